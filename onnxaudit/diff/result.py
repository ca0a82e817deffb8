"""The DiffReport: what changed between two files, as plain data with a schema_version."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from onnxaudit.cost.estimate import Amount
from onnxaudit.frameworks.figures import Figure

DIFF_SCHEMA_VERSION = 2  # 2: a MACs delta carries delta_terms

# a layer row's status
SAME, CHANGED, RENAMED, ONLY_OLD, ONLY_NEW = "same", "changed", "renamed", "only in OLD", "only in NEW"


@dataclass
class Delta:
    old: int | None
    new: int | None
    delta: int | None  # new - old; None when either is missing

    @staticmethod
    def of(old: int | None, new: int | None) -> Delta:
        """One Delta per pair of figures met lately, shared (no Delta is changed once made): 250,000 layers of the
        same counts hold four Deltas, not a million (~100 MB)."""
        return _delta(old, new)


@lru_cache(maxsize=4096, typed=True)  # typed: True and 1 stay apart
def _delta(old: int | None, new: int | None) -> Delta:
    return Delta(old, new, None if old is None or new is None else new - old)


@dataclass
class FigureDelta:
    """A framework-view figure of each file (exact, or a range that contains the truth)."""

    old: Figure | None
    new: Figure | None
    agree: bool  # equal, or ranges that overlap: no difference the files can show


@dataclass
class AmountDelta:
    """A cost figure of each file (MACs), concrete or in the free dims (`19,300,352 x batch`)."""

    old: str | None
    new: str | None
    delta: int | None  # new - old when both are concrete, or 0 when their terms are equal; else None
    same: bool  # equal terms: the same figure whatever the free dims
    # new - old per product of free dims (`batch` -> 19,267,584; `` the constant), zero terms left out; a layer
    # one file does not have counts 0 there; None when a file's figure is not known
    delta_terms: dict[str, int] | None = None

    @staticmethod
    def of(old: Amount | None, new: Amount | None, old_exists: bool = True, new_exists: bool = True) -> AmountDelta:
        same = old is not None and new is not None and old.terms == new.terms and old.value == new.value
        delta = 0 if same else None
        if old is not None and new is not None and old.value is not None and new.value is not None:
            delta = new.value - old.value
        before = old.terms if old is not None else None if old_exists else {}
        after = new.terms if new is not None else None if new_exists else {}
        terms = None
        if before is not None and after is not None:
            difference = {k: after.get(k, 0) - before.get(k, 0) for k in sorted(before.keys() | after.keys())}
            terms = {k: v for k, v in difference.items() if v}
        return AmountDelta(old.text if old else None, new.text if new else None, delta, same, terms)


@dataclass
class Side:
    model: str
    file_bytes: int
    producer: str
    opsets: dict[str, int]
    origin: str  # keras | pytorch | unknown, as the framework view tells it
    framework_status: str | None  # exact | inferred | ambiguous


@dataclass
class TotalsDiff:
    stored: dict[str, Delta]  # total, trainable, non_trainable, unclassified and their *_bytes
    by_dtype: dict[str, dict[str, Delta]]  # dtype -> params, bytes
    framework: dict[str, FigureDelta]  # total, trainable, non_trainable; empty without a framework view
    macs: AmountDelta  # multiply-accumulates (cost stage), in the free dims where the file leaves them


@dataclass
class TensorDiff:
    role: str
    old: str | None
    new: str | None
    old_dtype: str | None
    new_dtype: str | None
    old_dims: list[int] | None
    new_dims: list[int] | None
    params: Delta
    bytes: Delta
    values: str  # same | different | not compared
    values_how: str


@dataclass
class LayerDiff:
    status: str  # same | changed | renamed | only in OLD | only in NEW
    matched_by: str | None  # name | structure
    old: str | None
    new: str | None
    old_ops: list[str]
    new_ops: list[str]
    params: Delta
    trainable: Delta
    non_trainable: Delta
    bytes: Delta
    macs: AmountDelta
    changes: list[str]  # of: params, dtype, shape, op
    old_quantization: str | None  # e.g. "int8 QDQ"; None: float
    new_quantization: str | None
    values: str  # same | different | not compared | partly compared
    tensors: list[TensorDiff] = field(default_factory=list)


@dataclass
class FrameworkLayerDiff:
    """One framework-view layer (Keras layer, PyTorch module) of each file, paired by name then kind."""

    old: str | None
    new: str | None
    old_kind: str | None
    new_kind: str | None
    total: FigureDelta
    trainable: FigureDelta
    non_trainable: FigureDelta
    old_status: str | None  # exact | inferred | ambiguous
    new_status: str | None
    agree: bool  # both present and every figure agrees


@dataclass
class DiffReport:
    schema_version: int
    convention: str
    trainable_label: str
    non_trainable_label: str
    old: Side
    new: Side
    totals: TotalsDiff
    layers: list[LayerDiff]
    values_mode: str  # sample | full | none
    values_budget: int | None  # bytes per file compared whole under `full`
    logical_agree: bool  # framework-view totals agree (stored totals when a file has no view)
    changed: bool  # anything else differs: stored totals, a layer row, a value
    notes: list[str] = field(default_factory=list)
    framework_layers: list[FrameworkLayerDiff] = field(default_factory=list)

    def exit_code(self, strict: bool = False) -> int:
        """0 when the logical counts agree (and, strict, nothing else changed); 1 otherwise."""
        return 0 if self.logical_agree and not (strict and self.changed) else 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
