"""The ParamTable: one row per stored tensor with its role, element count and bytes, from dims only."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from operator import itemgetter

from onnxaudit.count.roles import Classified, RoleTable, Use
from onnxaudit.count.vocabulary import ROLES
from onnxaudit.errors import AuditError
from onnxaudit.io.dims import byte_size, dtype_name, element_count
from onnxaudit.model.ops import SLOT_NAMES
from onnxaudit.model.view import MAIN


def describe_use(use: Use) -> str:
    """'Conv conv0 input W' style text for one use; the node name is escaped by the renderer."""
    node, index = use.node, use.slot
    op = node.op_type
    names = SLOT_NAMES.get(op, ())
    slot = names[index] if index < len(names) else str(index)
    if use.via:
        return "".join(f"{step} -> " for step in use.via) + f"{op} {node.label} [{slot}]"
    return f"{op} {node.label} [{slot}]"


@dataclass(frozen=True)
class ParamTensor:
    """One stored tensor as counted: logical dims and elements, bytes as stored, role and uses."""

    name: str
    scope: str
    role: str
    category: str
    dtype: str
    dims: tuple[int, ...] | None
    count: int | None  # None: dims not statically known
    nbytes: int | None
    origin: str
    storage: str
    notes: tuple[str, ...]
    uses: tuple[Use, ...] = field(repr=False, compare=False)

    @property
    def has_data(self) -> bool:
        return self.storage != "none"

    @cached_property
    def consumers(self) -> tuple[str, ...]:
        """One line per distinct use ('Conv conv0 input W'), made when first read: only the report's
        tensor rows show them, and the text summary only those of unclassified tensors (97k uses at 200k
        nodes, 0.13 s)."""
        consumers = tuple(map(describe_use, self.uses))
        return tuple(dict.fromkeys(consumers)) if len(consumers) > 1 else consumers


@dataclass
class ParamTable:
    tensors: list[ParamTensor]
    limits: list[str]
    trained: frozenset[str] | None = None  # the file's own trainable marker, when it has one

    @property
    def marks_training(self) -> bool:
        return self.trained is not None

    def total(self, categories: set[str] | frozenset[str]) -> int:
        return sum(t.count or 0 for t in self.tensors if t.category in categories)


class _Sizes:
    """Element counts, byte sizes and dtype names per distinct dims and dtype: a model has a few
    hundred distinct shapes for tens of thousands of tensors."""

    def __init__(self) -> None:
        self.counts: dict[tuple[int, ...], int] = {}
        self.stored: dict[tuple[int, tuple[int, ...]], tuple[int, int | None]] = {}  # (dtype, dims) -> count, bytes
        self.dtype_names: dict[int, str] = {}

    def count(self, dims: tuple[int, ...], name: str) -> int:
        count = self.counts.get(dims)
        if count is None:
            count = self.counts[dims] = _element_count(dims, name)
        return count

    def count_and_bytes(self, dtype: int, dims: tuple[int, ...], name: str) -> tuple[int, int | None]:
        known = self.stored.get((dtype, dims))
        if known is None:
            count = self.count(dims, name)
            known = self.stored[(dtype, dims)] = (count, byte_size(dtype, count))
        return known

    def dtype_name(self, dtype: int) -> str:
        name = self.dtype_names.get(dtype)
        if name is None:
            name = self.dtype_names[dtype] = dtype_name(dtype)
        return name


def _param_tensor(entry: Classified, sizes: _Sizes) -> ParamTensor:
    tensor = entry.tensor
    logical, stored = entry.logical_dims, tensor.dims
    dims = stored if logical is None else logical
    if dims is None:
        count = nbytes = None
    elif dims is stored:  # count_and_bytes, its look-up inline: a few hundred shapes for 48.6k tensors at 200k nodes
        known = sizes.stored.get((tensor.dtype, dims))
        count, nbytes = known if known is not None else sizes.count_and_bytes(tensor.dtype, dims, tensor.name)
    else:
        count = sizes.count(dims, tensor.name)
        stored_count = element_count(stored) if stored is not None else None
        nbytes = byte_size(tensor.dtype, stored_count) if stored_count is not None else None
    uses = entry.uses
    notes = entry.notes
    if (  # most tensors: none of the notes below (one test, then the notes they have)
        logical is not None
        or tensor.sparse_nnz is not None
        or tensor.origin == "graph_input"
        or tensor.also_graph_input
        or tensor.storage == "external"
        or (len(uses) > 1 and len({*map(_use_role, uses)}) > 1)
    ):
        notes, nbytes = _notes(entry, dims, count, nbytes)
    dtype = tensor.dtype
    dtype_name = sizes.dtype_names.get(dtype)
    obj = _new(ParamTensor)  # every field, in order, without the frozen dataclass's __init__ (3x its time)
    _set_dict(obj, "__dict__", {
        "name": tensor.name,
        "scope": tensor.scope,
        "role": entry.role,
        "category": ROLES[entry.role].category,
        "dtype": dtype_name if dtype_name is not None else sizes.dtype_name(dtype),
        "dims": dims,
        "count": count,
        "nbytes": nbytes,
        "origin": tensor.origin,
        "storage": tensor.storage,
        "notes": tuple(notes),
        "uses": tuple(uses),
    })  # fmt: skip
    return obj


def _notes(
    entry: Classified, dims: tuple[int, ...] | None, count: int | None, nbytes: int | None
) -> tuple[list[str], int | None]:
    """The tensor's notes with what its storage and uses add, and its bytes (a sparse tensor's: its stored values)."""
    tensor = entry.tensor
    notes = list(entry.notes)
    if tensor.sparse_nnz is not None:
        notes.append(f"sparse: {tensor.sparse_nnz:,} stored values of {count:,}")
        nbytes = byte_size(tensor.dtype, tensor.sparse_nnz)
    if entry.logical_dims is not None and entry.logical_dims != tensor.dims:
        notes.append(
            f"packed storage {'x'.join(map(str, tensor.dims or ()))}; logical {'x'.join(map(str, dims or ()))}"
        )
    if tensor.origin == "graph_input":
        notes.append("graph input: no data in the file")
    if tensor.also_graph_input:
        notes.append("also a graph input: callers can override it")
    if tensor.storage == "external":
        notes.append("external data: counted from dims, data not read")
    uses = entry.uses
    if len(uses) > 1:
        roles = {u.role for u in uses}
        if len(roles) > 1:
            notes.append("used as " + ", ".join(sorted(roles)))
    return notes, nbytes


_use_role = itemgetter(2)  # Use.role, in C (a Use is a tuple: node, slot, role, via)
_new = object.__new__
_set_dict = object.__setattr__  # a frozen dataclass refuses `obj.__dict__ = ...`


def _element_count(dims: tuple[int, ...], name: str) -> int:
    try:
        return element_count(dims)
    except AuditError:
        return element_count(dims, f"tensor {name!r}")  # the same error, naming the tensor


# A parameter the file's training algorithm does not update (TrainingInfoProto): Keras counts it
# non-trainable (a frozen layer), PyTorch still lists it in parameters().
FROZEN = "frozen"
COUNTED_CATEGORIES = frozenset({"parameter", "statistic", FROZEN, "unclassified"})


def _as_trained(tensor: ParamTensor, trained: frozenset[str]) -> ParamTensor:
    """The spec's update_binding beats every heuristic: an updated tensor is trainable whatever its
    role looked like (running statistics aside), a parameter it leaves alone is frozen."""
    if tensor.scope != MAIN:
        return tensor
    updated = tensor.name in trained
    if tensor.category == "statistic":
        if not updated:
            return tensor
        note, category = "updated by the file's training algorithm (a running statistic, not trained)", "statistic"
    elif updated:
        if tensor.category == "parameter":
            return tensor
        note, category = "trainable: updated by the file's training algorithm (TrainingInfoProto)", "parameter"
    elif tensor.category == "parameter":
        note, category = "frozen: not updated by the file's training algorithm (TrainingInfoProto)", FROZEN
    else:
        return tensor
    return replace(tensor, category=category, notes=(*tensor.notes, note))


def param_table(roles: RoleTable) -> ParamTable:
    sizes = _Sizes()
    tensors = [_param_tensor(entry, sizes) for entry in roles.tensors]
    if roles.trained is not None:
        tensors = [_as_trained(t, roles.trained) for t in tensors]
    return ParamTable(tensors, list(roles.limits), roles.trained)
