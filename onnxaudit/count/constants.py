"""The role of a stored constant in a slot: a data slot tells only what it is not (a literal, a mask, a
shape, a named scalar parameter); a filler broadcast into a weight slot is no weight; packed weights' logical dims."""

from __future__ import annotations

import re
from functools import cached_property

from onnxaudit.count.foldedbn import FoldedBnRoles
from onnxaudit.count.graphfacts import more_than_scalar
from onnxaudit.count.vocabulary import PARAMETER_CATEGORIES, ROLES
from onnxaudit.io.dims import INTEGER_DTYPES, element_count
from onnxaudit.io.onnxcore import TensorProto
from onnxaudit.model.exporters import torchscript_export
from onnxaudit.model.ops import DATA
from onnxaudit.model.view import Node, Tensor

# a module attribute's state_dict name (`logit_scale`, `encoder.alpha`); not `onnx::Mul_3`, `/a/Constant_output_0`
_ATTRIBUTE_NAME = re.compile(r"(?!\d+$)\w+(\.\w+)*")


_FLOAT_DTYPES = frozenset({TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16})


# Element types of quantized weights: a 2-D+ table of these in Gather is a quantized embedding
# (onnxruntime's quantize_dynamic: Gather, then DequantizeLinear), never a shape.
QUANTIZED_DTYPES = frozenset(
    {TensorProto.INT8, TensorProto.UINT8, TensorProto.INT4, TensorProto.UINT4}
    | {getattr(TensorProto, name) for name in ("INT2", "UINT2") if hasattr(TensorProto, name)}  # onnx >= 1.19
)


def _quantized_table(tensor: Tensor) -> bool:
    return tensor.dtype in QUANTIZED_DTYPES and tensor.dims is not None and len(tensor.dims) >= 2


# the slot roles constant_role looks behind (the others stand as they are)
ASKED = frozenset({"embedding", "literal", DATA})


class ConstantRoles(FoldedBnRoles):
    def constant_role(self, tensor: Tensor, role: str, node: Node) -> str:
        """The role of a constant in a slot: a data slot only tells what it is not."""
        if role not in ASKED:
            return role  # a weight, a bias, a shape...: the slot's role stands
        if (
            role == "embedding"
            and node.op_type == "Gather"
            and (tensor.dtype in INTEGER_DTYPES or not tensor.dims)
            and not _quantized_table(tensor)
        ):
            return "shape" if tensor.dtype in INTEGER_DTYPES else "literal"
        dims = tensor.dims
        scalar = dims is not None and (not dims or element_count(dims) <= 1)  # () holds one value
        if role == "literal" and scalar and self.named_scalar(tensor):
            # one value multiplied into a weight on its way, under a parameter's name: weight_norm's 0-d g
            # (dim=None), g / |v| scaling v
            return "scalar_parameter"
        if role != DATA:
            return role
        if scalar:
            return "scalar_parameter" if self.named_scalar(tensor) else "literal"
        if tensor.dtype == TensorProto.STRING:
            return "literal"
        if tensor.dtype == TensorProto.BOOL:  # true/false cannot be trained: a mask table (GPT-2's causal bias)
            return "mask"
        if tensor.dtype in INTEGER_DTYPES and tensor.dims is not None and element_count(tensor.dims) <= 1024:
            return "shape"
        return "unclassified"

    def named_scalar(self, tensor: Tensor) -> bool:
        """A stored float scalar under a torch module attribute's name: a parameter (CLIP's logit_scale).
        Dynamo's node metadata names its parameters (%p_logit_scale); the TorchScript exporter keeps
        state_dict names and calls its own constants `onnx::Mul_12`, `/scope/Constant_output_0` or a
        number."""
        if tensor.origin != "initializer" or tensor.dtype not in _FLOAT_DTYPES:
            return False
        if self.view.fx.parameters:
            return tensor.name.replace(".", "_") in self.view.fx.parameters
        return self.legacy_torch_export and _ATTRIBUTE_NAME.fullmatch(tensor.name) is not None

    @cached_property
    def legacy_torch_export(self) -> bool:
        """exporters.torchscript_export, asked once: a walk over every node name."""
        return torchscript_export(self.view)

    def broadcast_filler(self, tensor: Tensor, role: str, via: tuple[str, ...]) -> str:
        """A single stored value Expanded into a weight or bias slot (torch.onnx dynamo writes a conv
        without bias as Expand(0.0, [C])): a filler, not a learned vector of one."""
        if "Expand" in via and ROLES[role].category in PARAMETER_CATEGORIES and not more_than_scalar(tensor):
            return "literal"
        return role

    def logical_dims(self, node: Node, slot: int) -> tuple[int, ...] | None:
        """The logical dims of a weight stored packed (the ops in PACKED_OPS), else None."""
        if node.op_type in ("MatMulNBits", "MatMulBnb4") and slot == 1:
            n, k = node.attrs.get("N"), node.attrs.get("K")
            if isinstance(n, int) and isinstance(k, int):
                return (n, k)
        if node.op_type == "GatherBlockQuantized" and slot == 0:
            # 4-bit values packed two to a uint8 byte (int4/uint4 dtypes already count logically)
            tensor = self.view.lookup(node.scope, node.inputs[0])
            if tensor is not None and tensor.dtype == TensorProto.UINT8 and node.attrs.get("bits", 4) == 4:
                if tensor.dims:
                    return (*tensor.dims[:-1], tensor.dims[-1] * 2)
        return None
