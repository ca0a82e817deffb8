"""What exporters' own naming and habits tell about a file: the facts count/, frameworks/ and report/ ask.

Kept below count/ so the role classifier can ask them too; each is a small function over the ModelView
or over names, never a rule that changes a figure (those live in frameworks/).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from operator import attrgetter
from typing import TYPE_CHECKING

from onnxaudit.model.ops import LAYOUT_OR_FLATTEN

if TYPE_CHECKING:
    from onnxaudit.model.view import ModelView

# tools that re-save an exporter's file under their own producer name: onnxruntime's optimizers and
# quantizer, Hugging Face Optimum's decoder merge
RESAVING_TOOLS = ("onnxruntime", "onnx.quantize", "optimum")

# torch.onnx (legacy) scopes a module's later calls `X_1`, `X_2`
_CALL_SUFFIX = re.compile(r"(.+)_\d+")

# the shape arithmetic an exporter computes a layout op's target with: never a layer's real op
_SHAPE_PLUMBING = frozenset({"Shape", "Gather", "Concat", "Slice", "Constant"})


def torchscript_node_names(view: ModelView) -> bool:
    """Node names in torch.onnx's TorchScript form, `/scope/Op` (dynamo's are `node_Conv_0`, tf2onnx's
    `model/conv/Conv2D`), in any graph: kept when a tool of RESAVING_TOOLS re-saves the file (Optimum's
    merged decoder holds them in the branches of one If)."""
    return any(n.name.startswith("/") for graph in view.graphs.values() for n in graph.nodes)


def holds_module_scopes(view: ModelView) -> bool:
    """Whether a main-graph node holds torch dynamo's module scopes; no node is asked when the reader saw none in the
    file (ModelView.module_scoped: 200k nodes, ~7 ms)."""
    return view.module_scoped and any(map(_MODULE_SCOPES, view.main.nodes))


_MODULE_SCOPES = attrgetter("module_scopes")


def torchscript_export(view: ModelView) -> bool:
    """torch.onnx's TorchScript exporter wrote the file, or onnxruntime's tools re-saved one: its
    `/scope/Op` node names tell it from dynamo's (`node_Conv_0`, module scopes in the metadata)."""
    if not view.producer.startswith(("pytorch", *RESAVING_TOOLS)) or holds_module_scopes(view):
        return False
    return torchscript_node_names(view)


def called_again(scope: str) -> str | None:
    """The module `scope` is a later call of (`X` for `X_1`), or None."""
    call = _CALL_SUFFIX.fullmatch(scope)
    return call.group(1) if call is not None else None


def op_behind_layout(handed_on: Sequence[str], layer_ops: Sequence[str]) -> str | None:
    """The op a layer's result comes from when every op that hands it on (`handed_on`) is a layout op:
    tf2onnx puts NHWC<->NCHW Transposes after a conv, and a Flatten or Reshape may close a layer. The
    last of `layer_ops` (in graph order) that is neither layout nor shape arithmetic; None when the
    result leaves through a real op already, or the layer has none."""
    if not handed_on or not LAYOUT_OR_FLATTEN.issuperset(handed_on):
        return None
    real = [op for op in layer_ops if op not in LAYOUT_OR_FLATTEN and op not in _SHAPE_PLUMBING]
    return real[-1] if real else None
