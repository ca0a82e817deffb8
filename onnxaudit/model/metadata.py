"""What torch.onnx (dynamo) and onnxscript write into node metadata: module scopes, FX calls, rewrite rules."""

from __future__ import annotations

import ast
import json
import re
from functools import lru_cache

from onnxaudit.io.onnxcore import (
    GraphProto,
    NodeProto,
)
from onnxaudit.io.text import as_text
from onnxaudit.model.view import FxFacts

_SCOPES_KEY = "pkg.torch.onnx.name_scopes"


def may_hold_module_scopes(data: bytes | bytearray | memoryview) -> bool:
    """Whether a node of the serialized model in `data` can carry torch's module scopes or onnxscript's
    rewrite rules: their keys' common prefix is somewhere in it. One search in C (~35 ms at 94 MB)
    spares reading every node's metadata_props (~90 ms at 200k nodes) in the many files that have
    none. A view is searched in the whole of what it views: a hit outside it only costs that reading."""
    whole = data.obj if isinstance(data, memoryview) else data
    if not isinstance(whole, (bytes, bytearray)):  # a view of anything else: search the view itself
        whole = bytes(data)
    return whole.find(_METADATA_PREFIX) >= 0


_FX_NODE_KEY = "pkg.torch.onnx.fx_node"
# the FX graph's placeholders: `%p_fc_weight` a parameter, `%b_running_mean` a buffer (dots as underscores)
_FX_BUFFER = re.compile(r"%b_(\w+)")
_FX_PARAMETER = re.compile(r"%p_(\w+)")
# aten's batch and instance norms take (input, weight, bias, running_mean, running_var, ...): affine=False
# passes None
_FX_NORM_WITHOUT_AFFINE = re.compile(r"(?:batch|instance)_norm\w*\.default\]\(args = \(%\w+, None, None, ")
# group_norm (input, num_groups, weight, bias, ...) and layer_norm (input, normalized_shape, weight, bias, ...):
# affine=False (elementwise_affine=False) passes None for both, bias=False None for the bias
_FX_NORM_AFFINE_ARGS = re.compile(
    r"(?:group|layer)_norm\w*\.default\]\(args = \(%\w+, (?:\d+|\[[^\]]*\]), (None|%\w+), (None|%\w+), "
)
_REWRITE_RULES_KEY = "pkg.onnxscript.rewriter.rule_name"
_BN_FUSION_RULE = "FuseBatchNormInto"  # ...Conv, ...ConvTranspose, ...Gemm
_METADATA_PREFIX = b"pkg."  # of _SCOPES_KEY, _FX_NODE_KEY and _REWRITE_RULES_KEY
# These three keys are io/wire.NODE_METADATA_KEPT: the walk drops every other entry of a node's metadata_props, so
# a key read here must be added there; and an FX call holding none of "%p_", "%b_", "None" (wire._FX_NODE_READ), so
# reading anything else of one must widen that too.


# torch's repr() of a list of plain names: single-quoted, no quote, backslash or control character inside; each
# string then means its characters alone, to ast.literal_eval and json alike, and the list splits at "', '"
_PLAIN_NAMES = re.compile(r"\['([^'\"\\\x00-\x1f]*(?:', '[^'\"\\\x00-\x1f]*)*)'\]")


@lru_cache(maxsize=4096)  # a layer's nodes share their lists (16.5k distinct of 39.4k in a Llama export)
def module_scopes(text: str) -> tuple[str, ...] | None:
    """The strings of torch's list literal (`['', 'layers.0', 'linear']`), or None when the text is not a
    list of strings."""
    plain = _PLAIN_NAMES.fullmatch(text)
    if plain is not None:
        return tuple(plain[1].split("', '"))  # 4x faster than json on a 40k-node export's 16k distinct lists
    try:
        found = _literal(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(found, list) and all(isinstance(x, str) for x in found):
        return tuple(found)
    return None


def _literal(text: str) -> object:
    """ast.literal_eval(text), as module_scopes reads it. torch writes repr() of a list of plain names:
    single-quoted strings with no quote or backslash inside, which json reads 6x faster once the quotes are
    swapped (most of loading a 40k-node dynamo export). Without `"` or a backslash a string means the same
    to both; what json accepts beyond Python (true, NaN) is no list of strings either way, and whatever
    json refuses (whitespace before the bracket, tabs in a string, 'a' 'b') goes to literal_eval."""
    if text[:1] == "[" and text[-1:] == "]" and '"' not in text and "\\" not in text:
        try:
            return json.loads(text.replace("'", '"'))
        except (ValueError, RecursionError):
            pass
    return ast.literal_eval(text)


def node_metadata(node: NodeProto, facts: FxFacts) -> tuple[str, ...]:
    """The node's module scopes: torch.onnx (dynamo) records its module stack as a Python list literal.
    Also what its FX call and its optimizer's rewrite rules say, collected into `facts`."""
    scopes: tuple[str, ...] = ()
    for prop in node.metadata_props:
        key = prop.key  # bytes when not UTF-8: then none of these keys
        if key == _SCOPES_KEY:
            text = as_text(prop.value)
            if len(text) < 4096 and (found := module_scopes(text)) is not None:
                scopes = found
        elif key == _FX_NODE_KEY and "%" in (value := as_text(prop.value)) and len(value) < 65536:
            if "%p_" in value:
                facts.parameters.update(_FX_PARAMETER.findall(value))
            if "%b_" in value:
                facts.buffers.update(_FX_BUFFER.findall(value))
                if "None, None" in value and _FX_NORM_WITHOUT_AFFINE.search(value):
                    facts.norms_without_affine.add(node.name)
            elif "None" in value and (args := _FX_NORM_AFFINE_ARGS.search(value)):
                if args[1] == "None" and args[2] == "None":
                    facts.norms_without_affine.add(node.name)
                elif args[2] == "None":
                    facts.norms_without_bias.add(node.name)
        elif key == _REWRITE_RULES_KEY and (fused := as_text(prop.value).count(_BN_FUSION_RULE)):
            facts.bn_fusions[node.name] = fused
    return scopes


_SIGNATURE_KEY = "pkg.torch.export.ExportedProgram.graph_signature"
_FOLDED_FROM_KEY = "pkg.onnxscript.optimizer.folded_from"
# one input of the signature: `p_fc_weight: PARAMETER target='fc.weight'`, `b_index: BUFFER target='index' ...`
_SIGNATURE_INPUT = re.compile(r"^\w+: (PARAMETER|BUFFER) target='([^'\n]*)'", re.MULTILINE)
_LONGEST_SIGNATURE = 1 << 24  # 16 MB of text: ~200k inputs


def graph_signature(graph: GraphProto, facts: FxFacts) -> None:
    """What torch.onnx (dynamo) writes on the main graph: the ExportedProgram's graph signature, naming
    every parameter and buffer of the module (those stored and those the optimizer folded away), and on
    each initializer the optimizer folded, the values it was folded from. Into `facts`; the
    parameters and buffers also into its FX placeholder sets (dots as underscores), as the nodes'
    FX calls name them."""
    text = next((as_text(p.value) for p in graph.metadata_props if as_text(p.key) == _SIGNATURE_KEY), "")
    if not text or len(text) > _LONGEST_SIGNATURE:
        return
    parameters: list[str] = []
    buffers: list[str] = []
    for kind, target in _SIGNATURE_INPUT.findall(text):
        (parameters if kind == "PARAMETER" else buffers).append(target)
    facts.signature_parameters, facts.signature_buffers = frozenset(parameters), frozenset(buffers)
    facts.parameters.update(t.replace(".", "_") for t in parameters)
    facts.buffers.update(t.replace(".", "_") for t in buffers)
    for value in graph.value_info:
        if not len(value.metadata_props):
            continue
        for prop in value.metadata_props:
            if as_text(prop.key) == _FOLDED_FROM_KEY and len(prop.value) < 65536:
                sources = module_scopes(as_text(prop.value))
                if sources is not None:
                    facts.folded_from[as_text(value.name)] = sources
