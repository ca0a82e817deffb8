"""Names two exports of one model may give the same layer, reduced to one spelling.

The count stage already turns scopes into layer paths (`/layer1/layer1.0/conv1/Conv` -> layer1.0.conv1,
tf2onnx's `functional_1/conv0_1/...` -> conv0). What is left differs between exporters and tools that
rewrite a file: a quantizer's `_quantized` / `_DequantizeLinear`, onnxruntime's `ConvBnFusion_*` and
`reorder_token_N`, onnx-simplifier's `_v_N`, tf2onnx's `const_fold_opt__N`, dynamo's `node_` and
`.weight_bias`. `layer_key` and `tensor_module` strip those; an anonymous name gives None, so that
alignment falls back on structure instead of pairing two unrelated `onnx::Conv_42`s.
"""

from __future__ import annotations

import re

from onnxaudit.count.layers import path_from_node_name, path_from_tensor_name

# decorations a tool adds to a name it keeps (applied until none matches)
_PREFIXES = re.compile(r"^(ConvBnFusion_(?:[A-Z]+_)+|node_|StatefulPartitionedCall/|functional_\d+/|sequential_?\d*/)")
_SUFFIXES = re.compile(
    r"(_quantized|_DequantizeLinear(_Output)?|_QuantizeLinear(_Output)?|_dequantized|_merged_\d+|_fused"
    r"|_Q4|_Q8|_fp16|_float16|_output_0|:\d+|__\d+)$"
)
# dynamo stores a conv's folded BN shift as `<conv>.weight_bias`; torch keys end in a tensor suffix
_DYNAMO_BIAS = re.compile(r"\.weight_bias$")
# names a tool invents: they tell nothing about the layer
_ANONYMOUS = re.compile(
    r"^(onnx::|_v_\d+$|reorder(_token_\d+)?$|const_fold_opt|Constant_?\d*|val_\d+$|initializer_?\d*$|\d+$)"
)


def strip_decorations(name: str) -> str:
    """`ConvBnFusion_BN_B_bn1.bias` -> `bn1.bias`; `conv1.weight_quantized` -> `conv1.weight`."""
    if not _PREFIXES.match(name) and not _SUFFIXES.search(name):  # most names: one look, not the loop's two
        return _DYNAMO_BIAS.sub(".bias", name) if name.endswith("_bias") else name
    previous = None
    while previous != name:
        previous = name
        name = _SUFFIXES.sub("", _PREFIXES.sub("", name))
    return _DYNAMO_BIAS.sub(".bias", name)


def anonymous(name: str) -> bool:
    return not name or bool(_ANONYMOUS.match(strip_decorations(name)))


def _anonymous_stripped(clean: str) -> bool:
    """anonymous() of a name strip_decorations already returned (stripping it again changes nothing)."""
    return not clean or bool(_ANONYMOUS.match(clean))


def tensor_module(name: str) -> str | None:
    """The module a tensor name says it belongs to (`layer1.0.bn1.running_mean` -> layer1.0.bn1), None
    when the name is not a state_dict-like key once decorations are stripped."""
    clean = strip_decorations(name)
    if _anonymous_stripped(clean):
        return None
    path = path_from_tensor_name(clean)
    if path is None and "/" in clean:
        path = path_from_node_name(clean.rsplit(":", 1)[0])
        path = path[:-1] if path and len(path) > 1 else None  # drop the variable's own scope (kernel)
    return ".".join(path) if path else None


def layer_key(name: str) -> str | None:
    """A row's name in one spelling: `/Sigmoid` and dynamo's `node_sigmoid` -> `sigmoid`; None when
    the name is one a tool invented."""
    clean = strip_decorations(name.strip("/"))
    if "/" in clean:
        path = path_from_node_name("/" + clean)
        clean = ".".join(path) if path else clean
        if anonymous(clean):
            return None
    elif _anonymous_stripped(clean):
        return None
    return clean.casefold()
