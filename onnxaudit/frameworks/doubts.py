"""Doubts about a layer's stored tensors: values computed at export, buffers, tensors shared between modules."""

from __future__ import annotations

import re
from collections.abc import Container

from onnxaudit.count.layers import Layer, path_from_tensor_name
from onnxaudit.count.table import ParamTable, ParamTensor
from onnxaudit.count.vocabulary import ROLES
from onnxaudit.frameworks.common import FOLDED_OP_OUTPUT, LOOKUP_NAME, STORED, UNKNOWN_ROLE
from onnxaudit.frameworks.figures import AMBIGUOUS, INFERRED, RANK, Alternative, Figure, FrameworkLayer, plus
from onnxaudit.model.exporters import called_again
from onnxaudit.model.ops import DATA, RESHAPING_OPS
from onnxaudit.model.view import FxFacts, ModelView, Node


def not_own(fl: FrameworkLayer, copy: ParamTensor, of: str, how: str) -> str:
    """Leave `copy`, a stored copy of the parameter `of` (counted where `of` is), out of the layer;
    `how` says what shows it is one."""
    count = copy.count or 0
    why = f"{copy.name} is {of} {how}: counted once, with {of}"
    at_least = fl.trainable.lo - (0 if copy.category == "unclassified" else count)  # unknown: in the upper bound only
    return _revise(fl, Figure(at_least, plus(fl.trainable.hi, -count)), why, INFERRED)


def unknown_roles_settled(fl: FrameworkLayer) -> None:
    """Every constant of unknown role `fl` held is a copy its values told (not_own): the range they
    made is gone, and so is the line saying they were counted at most."""
    if UNKNOWN_ROLE in fl.evidence:
        fl.evidence.remove(UNKNOWN_ROLE)
    exact = fl.trainable.exact and fl.non_trainable.exact and not fl.alternatives
    if fl.status == AMBIGUOUS and exact:
        fl.status = INFERRED


def _revise(
    fl: FrameworkLayer, trainable: Figure, why: str, status: str = AMBIGUOUS, choices: tuple[Alternative, ...] = ()
) -> str:
    """Give `fl` the figure `trainable` for the reason `why`, at least as unsure as `status`;
    returns why's short form. `choices`: what the new range is made of, each a value the file
    cannot show taken one way or the other (this tensor is a parameter, or not): kept as the layer's
    alternatives while every value its range holds is its lower bound plus some of them, so verify
    rejects an expectation none reaches; a range of anything else drops them."""
    chosen = bool(choices) and only_choices(fl)
    of_choices = fl.trainable.likely is None and fl.non_trainable.likely is None and _increments(fl.alternatives)
    fl.trainable = trainable
    if chosen:
        fl.alternatives += choices
    elif status == AMBIGUOUS and fl.alternatives and of_choices:
        fl.alternatives = []
    fl.status = max(fl.status, status, key=RANK.__getitem__)
    if fl.evidence == [STORED]:
        fl.evidence.clear()  # the first evidence line is the one shown: make it the reason
    fl.evidence.append(why)
    return why.partition(":")[0]


def not_a_parameter(fl: FrameworkLayer, t: ParamTensor, why: str) -> str:
    """Leave `t` out of the layer: the file shows it is no parameter of the framework (`why`). A
    constant of unknown role was in the layer's upper bound only; the layer's figures exact after it,
    no doubt is left."""
    count, unknown = t.count or 0, t.category == "unclassified"
    lo, hi = fl.trainable.lo - (0 if unknown else count), plus(fl.trainable.hi, -count)
    said = _revise(fl, Figure(lo, hi) if lo != hi else Figure.of(lo), why, INFERRED)
    if fl.trainable.exact and fl.non_trainable.exact and fl.status == AMBIGUOUS:
        fl.status = INFERRED
        fl.evidence = [e for e in fl.evidence if e != UNKNOWN_ROLE]
    return said


def maybe_not_own(fl: FrameworkLayer, copy: ParamTensor, of: str, choice: bool = False) -> str:
    """Leave `copy` out of the layer's lower bound: it may be `of` (a tensor counted elsewhere, or a
    value computed from parameters; `of` says why and how it is counted). `choice`: it is that or a
    parameter as stored, nothing between (not a product whose sources the file may not hold)."""
    count = copy.count or 0
    lower = Figure(fl.trainable.lo - count, fl.trainable.hi)
    why = f"{copy.name} {'x'.join(map(str, copy.dims or ()))} may be {of}"
    return _revise(fl, lower, why, choices=(Alternative(f"{copy.name} is a parameter as stored", count),) * choice)


def only_choices(fl: FrameworkLayer) -> bool:
    """Whether each value `fl`'s figures may take is their lower bound plus some of its alternatives
    (exact figures: none), so a choice more can join them."""
    t, n, alternatives = fl.trainable, fl.non_trainable, fl.alternatives
    if t.likely is not None or n.likely is not None or t.hi is None or n.hi is None:
        return False
    if not _increments(alternatives):
        return False
    return (
        t.lo + sum(a.trainable for a in alternatives) == t.hi
        and n.lo + sum(a.non_trainable for a in alternatives) == n.hi
    )


def _increments(alternatives: list[Alternative]) -> bool:
    """Alternatives that add to a range's lower bound (choices), not a likely value's defaults taken
    the other way (Keras's center=False: negative)."""
    return all(a.trainable >= 0 and a.non_trainable >= 0 for a in alternatives)


def parameters_or_not(fl: FrameworkLayer, unknown: list[ParamTensor]) -> None:
    """A stored layer's constants of unknown role, each under a state_dict key: each is a parameter
    as stored, or a buffer or a constant of the module, nothing between. Their choices, where they
    are all the layer's range holds."""
    if not unknown or fl.alternatives or fl.trainable.likely is not None or not fl.non_trainable.exact:
        return
    choices = [Alternative(f"{t.name} is a parameter (not a buffer or a constant)", t.count or 0) for t in unknown]
    if fl.trainable.hi == fl.trainable.lo + sum(a.trainable for a in choices):
        fl.alternatives = choices


def maybe_counted_again(fl: FrameworkLayer, t: ParamTensor, readers: list[str]) -> str:
    """Let the layer's upper bound count `t` once more for each other module that reads it."""
    count = t.count or 0
    upper = Figure(fl.trainable.lo, plus(fl.trainable.hi, count * len(readers)))
    choices = tuple(Alternative(f"{reader} has a parameter of its own, equal to {t.name}", count) for reader in readers)
    return _revise(
        fl,
        upper,
        f"{t.name} is read by {1 + len(readers)} modules (also {', '.join(readers)}): one parameter they share, "
        "or equal values the exporter stored once (an untrained model's ones and zeros); counted once at least, "
        "once per module at most",
        choices=choices,
    )


_TIED = frozenset({"embedding", "weight"})


def _same_parameter_kind(role: str, read_as: str) -> bool:
    if read_as == DATA or ROLES[read_as].category != "parameter":
        return False
    return role == read_as or not {role, read_as} == _TIED


def read_by_several_modules(table: ParamTable, layers: list[Layer]) -> dict[str, list[str]]:
    """torch.onnx (dynamo) stores tensors of equal values once: an untrained model's LayerNorm scales
    and zero biases of several modules become one initializer they all read. Tensor name -> the
    other modules that read it as a parameter (a zero bias of one and a LayerNorm shift of another
    become one). A module's later call (`X_1` in a legacy export) shares its parameters for real and
    is left out, as is an embedding table read as an output head's weight (tied: once in torch)."""
    several = [t for t in table.tensors if len(t.uses) > 1 and t.category == "parameter"]
    if not several:
        return {}
    # modules only: a node of no module (`/MatMul_2`, an unrolled RNN's step) is a layer of its own
    modules = [layer for layer in layers if layer.path and not layer.path[0].startswith("#")]
    layer_of_node = {node.index: layer.name for layer in modules for node in layer.nodes}
    layer_of_tensor = {t.name: layer.name for layer in modules for t in layer.tensors}
    found = {}
    for t in several:
        own = layer_of_tensor.get(t.name)
        if own is None:
            continue
        readers = dict.fromkeys(layer_of_node.get(u.node.index) for u in t.uses if _same_parameter_kind(t.role, u.role))
        others = [name for name in readers if name and name != own and called_again(name) != own]
        if others:
            found[t.name] = others
    return found


# a layer of these ops (and layout plumbing) is one matrix product per call, plus its bias
ONE_PRODUCT_OPS = frozenset({"MatMul", "Gemm", "Conv", "ConvTranspose", "Add"})


# what dynamo names a product it computed at export, or a parameter it repeated per batch row
# (MultiheadAttention's bias_k as `repeat`): an op's output, not a parameter's name
_DYNAMO_PRODUCT = re.compile(r"(linear|addmm|mm|bmm|matmul|baddbmm|repeat|tile|expand)(_\d+)?")


def folded_products(tensors: list[ParamTensor]) -> dict[str, str]:
    """torch.onnx (dynamo) computes at export what depends on parameters alone, e.g. DeBERTa's relative
    position embeddings projected by each layer's pos_key_proj and split per head ((heads, positions,
    head size) `transpose_1`), or a Linear applied to a zero state (`linear_1`: its bias, repeated per
    batch row). A Linear weight is 2-D: an anonymous constant of 3 dims or more that a MatMul reads is
    more likely such a product, whose sources the file does not hold; so is one named after a product."""
    found = {}
    for t in tensors:
        dims = t.dims
        if t.category != "parameter" or not dims:
            continue
        named_product = "." not in t.name and _DYNAMO_PRODUCT.fullmatch(t.name) is not None
        if not named_product and (t.role != "weight" or len(dims) < 3 or path_from_tensor_name(t.name) is not None):
            continue
        if named_product or all(u.node.op_type == "MatMul" for u in t.uses):
            why = (
                f"named after the {t.name.rstrip('_0123456789')} that made it"
                if named_product
                else "a Linear weight has 2 dims"
            )
            found[t.name] = (
                f"a product computed at export from parameters ({why}): counted as stored at most; the "
                "parameters it came from, and their count, may not be in the file"
            )
    return found


def measured_only(view: ModelView, table: ParamTable) -> dict[str, str]:
    """Weights whose products only a Shape reads: their values are never used. onnxruntime's T5 attention
    fusion copies layer 0's key projection into the fused qkv weight and keeps the original MatMul for
    the key length its position bias needs. Weight name -> why it may be counted twice."""
    readers, main = view.main.readers, view.main.scope
    return {
        t.name: "a copy an optimizer's fusion left behind (only a Shape reads its product): counted as stored at most"
        for t in table.tensors
        if t.role == "weight" and t.uses and all(u.node.scope == main and _measured(u.node, readers) for u in t.uses)
    }


def _measured(node: Node, readers: dict[str, list[Node]], depth: int = 0) -> bool:
    """Whether only Shape reads `node`'s outputs, directly or through reshaping ops."""
    outputs = [out for out in node.outputs if out]
    if not outputs or depth > 4:
        return False
    for out in outputs:
        read_by = readers.get(out)
        if not read_by:
            return False
        for reader in read_by:
            if not (
                reader.op_type == "Shape"
                or (
                    reader.op_type in RESHAPING_OPS
                    and reader.inputs[:1] == (out,)
                    and _measured(reader, readers, depth + 1)
                )
            ):
                return False
    return True


def anonymous_biases(tensors: list[ParamTensor]) -> dict[str, str]:
    """A (1, N) constant the TorchScript exporter named `onnx::Add_N`, added like a bias, in a file that
    keeps its parameters' state_dict names: a registered buffer (BART's final_logits_bias after its
    lm_head) or a value folded at export. Not a Linear's bias: that keeps its key, or, a slice folded at
    export (MultiheadAttention's in_proj_bias split per q, k, v), has one dim."""
    return {
        t.name: "a registered buffer or a value folded at export (an anonymous bias, where the file names its "
        "parameters): counted as stored at most"
        for t in tensors
        if t.role == "bias"
        and t.dims is not None
        and len(t.dims) > 1
        and _ANONYMOUS_ADD.fullmatch(t.name)
        and all(u.node.op_type == "Add" for u in t.uses)
    }


# dynamo names a tensor it made in forward after the factory that made it (`ones`, `zeros_1`, `full`)
_FACTORY_OUTPUT = re.compile(r"(ones|zeros|full|empty|eye|rand|randn|arange|linspace|scalar_tensor)(_like)?(_\d+)?")


def made_in_forward(tensors: list[ParamTensor]) -> dict[str, str]:
    """A weight that is no module's parameter, in a file that keeps its parameters' state_dict names: a
    Constant node in a weight slot of a TorchScript export (F.conv1d(x, torch.ones(...)): the exporter
    stores parameters as initializers, and only a frozen module's weights as Constant nodes), or a tensor
    dynamo named after the factory that made it (`ones`). Counted as stored at most."""
    found = {}
    for t in tensors:
        if t.role not in ("weight", "bias") or t.category != "parameter":
            continue
        if t.origin == "constant":
            found[t.name] = (
                "a tensor made in forward (torch.ones, torch.full: a Constant node in a weight slot, where the file "
                "stores its parameters as state_dict initializers) or a frozen module's weight: counted as stored "
                "at most"
            )
        elif _FACTORY_OUTPUT.fullmatch(t.name):
            found[t.name] = (
                f"a tensor made in forward (named after the {t.name.rstrip('_0123456789')} that made it at export), no "
                "module's parameter: counted as stored at most"
            )
    return found


def folded_constants(tensors: list[ParamTensor], fx: FxFacts, stored: Container[str]) -> dict[str, str]:
    """Tensors torch.onnx (dynamo) computed at export that are no parameter of the module, by what its
    optimizer recorded (folded_from) against the graph signature's parameters and buffers: folded from
    none of them, a tensor made in forward (`torch.zeros(8, 8) + 0.5` stored as `add`); folded from
    parameters the file stores as well, a value derived from them (a Snake's 1 / (alpha + eps) beside
    alpha), counted where they are. A tensor folded from a parameter the file does not store stands
    for it (a gathered bias table, a transposed weight) and is left as it is."""
    parameters, buffers = fx.signature_parameters, fx.signature_buffers  # never joined: this runs once a layer
    if not parameters and not buffers:
        return {}
    found = {}
    for t in tensors:
        sources = fx.folded_from.get(t.name)
        if sources is None or t.category != "parameter" and t.category != "unclassified":
            continue
        if t.name in parameters or t.name in buffers:
            continue
        own = [s for s in sources if s in parameters or s in buffers]
        if not own:
            found[t.name] = (
                f"{t.name} was folded at export from {_listed(sources)}, none of them a parameter or buffer of the "
                "module (torch.onnx's graph signature): a tensor made in forward, not a parameter"
            )
        elif all(s in stored for s in own):
            found[t.name] = (
                f"{t.name} was folded at export from {_listed(own)} (torch.onnx's graph signature: parameters or "
                "buffers the file stores too): a value derived from them, counted where they are"
            )
    return found


# the FX ops whose output may hold fewer values than their input: dynamo names a folded value after the op
# that made it (`select`, `slice_1`), and onnxscript's optimizer lists the values folded on the way to it
_SELECTING_OP = re.compile(
    r"(select|slice|index|index_select|gather|embedding|embedding_bag|narrow|getitem|unbind|split|split_with_sizes"
    r"|chunk|take|take_along_dim|diagonal|as_strided|masked_select|unfold)(_+\d+)*"
)


def read_in_part(tensors: list[ParamTensor], fx: FxFacts, stored: Container[str]) -> dict[str, str]:
    """Tensors torch.onnx (dynamo) folded at export from a parameter the file does not store, by an op
    that can read part of it (one row of a token-type table, `select`; the first rows of a position
    table, `slice`; a relative bias table gathered by an index buffer): the stored values may be fewer
    than the parameter's, whose size is in no file. Name -> why. Folded by ops that keep every value
    (a Linear weight's transpose, a layer scale's view, a cls_token's expand), a tensor holds at least
    the parameter's count and is left as it is."""
    parameters, buffers = fx.signature_parameters, fx.signature_buffers  # never joined: this runs once a layer
    if not parameters:
        return {}
    found = {}
    for t in tensors:
        sources = fx.folded_from.get(t.name)
        if sources is None or t.name in parameters or t.name in buffers:
            continue
        tables = [s for s in sources if s in fx.signature_parameters and s not in stored]
        if not tables:
            continue
        # a value is named once: an op's output named like a buffer (`index`) is in the list by that name
        ops = [n for n in (t.name, *sources) if _SELECTING_OP.fullmatch(n) and n not in fx.signature_parameters]
        if ops:
            kinds = list(dict.fromkeys(_SELECTING_OP.sub(r"\1", n) for n in ops))
            found[t.name] = (
                f"{t.name} {'x'.join(map(str, t.dims or ()))} was folded at export from {_listed(tables)} through "
                f"{_listed(kinds)} "
                "(torch.onnx's graph signature names the parameter, the file does not store it): the part of it "
                "read, the parameter's count may be larger; no upper bound"
            )
    return found


def open_above(fl: FrameworkLayer, t: ParamTensor, why: str) -> str:
    """`t` may be part of a larger parameter the file does not hold (`why`): the layer's count has no upper
    bound the file can show, and `t` is not counted in its lower one."""
    lower = fl.trainable.lo - (t.count or 0 if t.category == "parameter" else 0)
    said = _revise(fl, Figure(max(lower, 0), None), why)
    if UNKNOWN_ROLE in fl.evidence:  # no longer counted as trainable at most: the reason, first
        fl.evidence = [why, *(e for e in fl.evidence if e not in (UNKNOWN_ROLE, why))]
    return said


def _listed(names: tuple[str, ...] | list[str], most: int = 4) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def state_dict_key(t: ParamTensor, fx: FxFacts) -> bool:
    """Whether `t` is an initializer under a name torch gives a module's tensor (`pos_embed`,
    `blocks.0.gamma`), not one its exporters give a value they made (`onnx::Add_7`, `/Constant_output_0`,
    dynamo's op outputs `val_3`, `permute_2`, `embedding_1`, `ones`, `select`). Where the file holds
    torch.onnx's graph signature, it names them all."""
    name = t.name
    if fx.signature_parameters or fx.signature_buffers:
        return t.origin == "initializer" and (name in fx.signature_parameters or name in fx.signature_buffers)
    return (
        t.origin == "initializer"
        and _MODULE_KEY.fullmatch(name) is not None
        and not _DYNAMO_VALUE.fullmatch(name)
        and not _DYNAMO_PRODUCT.fullmatch(name)
        and not _FACTORY_OUTPUT.fullmatch(name)
        and not FOLDED_OP_OUTPUT.fullmatch(name)
        and not LOOKUP_NAME.fullmatch(name)
    )


_MODULE_KEY = re.compile(r"[A-Za-z_]\w*(\.\w+)*")
_DYNAMO_VALUE = re.compile(r"_?val_\d+")


def buffer_named(tensors: list[ParamTensor]) -> list[ParamTensor]:
    """Tensors named like a registered buffer (Silero's `stft.forward_basis_buffer`, a conv's fixed STFT
    basis): the TorchScript exporter, and tools that inline its files, store a buffer as they store a
    parameter, and only dynamo's node metadata tells them apart. The name is the only evidence, so
    such a tensor stays in the upper bound."""
    found = []
    for t in tensors:
        if "buf" not in t.name.lower():  # most names: no split (48k weights at 200k nodes)
            continue
        leaf = _NAME_PARTS.split(t.name)[-1].lower()
        if "buffer" in leaf or leaf == "buf" or leaf.endswith("_buf"):
            found.append(t)
    return found


BUFFER_NAMED = "a registered buffer, by its name, stored as the exporter stores a parameter: counted as stored at most"


# a name's parts: state_dict dots, scopes' slashes, the `__` spox and onnx's inliner put before a branch's names
_NAME_PARTS = re.compile(r"[./]|__")


# the TorchScript exporter's name for an Add's constant input (Optimum's merged decoders add `_merged_0`)
_ANONYMOUS_ADD = re.compile(r"onnx::Add_\d+(_merged_\d+)?")


def bn_folded_at_run_time(table: ParamTable) -> bool:
    """onnxoptimizer's fuse_bn_into_conv left its run-time fold: a BN mean that a Sub takes from a bias."""
    return any(t.role == "bn_mean" and any(u.node.op_type == "Sub" for u in t.uses) for t in table.tensors)


def runtime_bn_fold_biases(tensors: list[ParamTensor]) -> dict[str, str]:
    """onnxoptimizer's fuse_bn_into_conv computes the conv's bias at run time as (b - mean) * scale + beta
    and gives a conv without bias a b of zeros: the b the Sub takes the mean from may be no parameter of
    the framework."""
    return {
        t.name: "zeros onnxoptimizer's BatchNorm fusion made for a conv without bias: counted as stored at most"
        for t in tensors
        if t.role == "bias" and any("Sub" in u.via for u in t.uses)
    }
