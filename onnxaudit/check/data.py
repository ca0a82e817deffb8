"""The file pass, read off the wire-format map before any model view exists: every tensor record's dims,
stored length against dims, and external data validated before a byte of it is read. It always runs
(the value scan may read only what it cleared); the OA301..OA304 rules report the problems it found.
It also says where each tensor's bytes can be read from, for the value scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from onnxaudit.io.datamap import FileMap, TensorRecord
from onnxaudit.io.dims import MAX_ELEMENTS, byte_size, dtype_name
from onnxaudit.io.external import Extent, ExternalFiles, Problem
from onnxaudit.io.onnxcore import TensorProto
from onnxaudit.io.ranged import RangedBuffer
from onnxaudit.io.text import quoted
from onnxaudit.io.weights import count_varints

INT64_MAX = 2**63 - 1

# dtype -> (typed field that holds it when raw_data is absent, stored values per element)
_TYPED_FIELD: dict[int, tuple[str, int]] = {
    TensorProto.FLOAT: ("float_data", 1),
    TensorProto.COMPLEX64: ("float_data", 2),
    TensorProto.DOUBLE: ("double_data", 1),
    TensorProto.COMPLEX128: ("double_data", 2),
    TensorProto.INT64: ("int64_data", 1),
    TensorProto.UINT32: ("uint64_data", 1),
    TensorProto.UINT64: ("uint64_data", 1),
    TensorProto.STRING: ("string_data", 1),
}
for _dtype in (
    TensorProto.INT32, TensorProto.INT16, TensorProto.INT8, TensorProto.UINT16, TensorProto.UINT8,
    TensorProto.BOOL, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.FLOAT8E4M3FN,
    TensorProto.FLOAT8E4M3FNUZ, TensorProto.FLOAT8E5M2, TensorProto.FLOAT8E5M2FNUZ,
):  # fmt: skip
    _TYPED_FIELD[_dtype] = ("int32_data", 1)
_FIXED_WIDTH = {"float_data": 4, "double_data": 8}
_SCANNABLE_TYPED: dict[int, str] = {TensorProto.FLOAT: "float_data", TensorProto.DOUBLE: "double_data"}


# what is wrong with a record: its dims, its stored length, its external location, its external range
ProblemKind = Literal["dims", "length", "location", "range"]

_EXTERNAL_KIND: dict[str, ProblemKind] = {"location": "location", "range": "range", "length": "length"}


@dataclass(frozen=True)
class FileProblem:
    kind: ProblemKind
    message: str
    name: str
    scope: str


@dataclass
class FileCheck:
    problems: list[FileProblem] = field(default_factory=list)
    extents: dict[tuple[str, str], Extent] = field(default_factory=dict)
    unreadable: dict[tuple[str, str], str] = field(default_factory=dict)  # key -> why its bytes are not scanned
    reported: set[tuple[str, str]] = field(default_factory=set)  # unreadable because of a problem above


def elements(record: TensorRecord) -> tuple[int | None, str]:
    """The element count of `record`'s dims, or None and what is wrong with them."""
    if record.dims is None:
        return None, "has more dims than any real tensor"
    count = 1
    for dim in record.dims:
        if dim < 0:
            shown = " x ".join(str(d) for d in record.dims)
            return None, f"has a negative dim ({shown})"
    for dim in record.dims:
        count *= dim
        if count > INT64_MAX:
            return None, "has dims whose product overflows int64"
    if count > MAX_ELEMENTS:
        return None, f"has dims whose product ({count:,}) exceeds 2**53 elements"
    return count, ""


def file_pass(files: FileMap, model_fd: int | RangedBuffer, external: ExternalFiles) -> FileCheck:
    """Every record checked; extents for those whose bytes may be read."""
    out = FileCheck()
    for record in files.tensors.values():
        _check_record(record, model_fd, external, out)
    return out


def _check_record(record: TensorRecord, model_fd: int | RangedBuffer, external: ExternalFiles, out: FileCheck) -> None:
    what = _what(record)
    count, problem = elements(record)
    if count is None:
        out.problems.append(FileProblem("dims", f"{what} {problem}", record.name, record.scope))
        out.unreadable[record.key] = "invalid dims"
        out.reported.add(record.key)
        return
    if record.origin.startswith("sparse"):
        out.unreadable[record.key] = "sparse storage"
        return
    if record.is_external:
        resolved = external.resolve(record, count)
        if isinstance(resolved, Problem):
            message = f"{what}: {resolved.message}"
            out.problems.append(FileProblem(_EXTERNAL_KIND[resolved.kind], message, record.name, record.scope))
            out.unreadable[record.key] = "external data unusable"
            out.reported.add(record.key)
        elif resolved.fd is None:
            out.unreadable[record.key] = "external data of a model at a URL (never fetched)"
        else:
            out.extents[record.key] = resolved
        return
    expected = byte_size(record.dtype, count)
    if record.raw is not None:
        start, end = record.raw
        if expected is not None and record.dtype != TensorProto.STRING and end - start != expected:
            message = (
                f"{what}: raw_data holds {end - start:,} bytes, "
                f"dims {_dims(record)} of {dtype_name(record.dtype)} need {expected:,}"
            )
            out.problems.append(FileProblem("length", message, record.name, record.scope))
            out.unreadable[record.key] = "data length wrong"
            out.reported.add(record.key)
        elif expected is not None:
            out.extents[record.key] = Extent(model_fd, start, end - start)
        return
    _check_typed(record, count, model_fd, what, out)


def _check_typed(record: TensorRecord, count: int, model_fd: int | RangedBuffer, what: str, out: FileCheck) -> None:
    spec = _TYPED_FIELD.get(record.dtype)
    if spec is None:
        out.unreadable[record.key] = f"{dtype_name(record.dtype)} in typed fields"
        return
    name, per = spec
    others = sorted(f for f, typed in record.typed.items() if f != name and (typed.spans or typed.unpacked))
    stored = _typed_count(record, name, model_fd)
    if stored is None:
        message = f"{what}: {name} is not a whole number of values"
        out.problems.append(FileProblem("length", message, record.name, record.scope))
        out.unreadable[record.key] = "data length wrong"
        out.reported.add(record.key)
        return
    if stored != count * per:
        if stored == 0 and not others:
            message = f"{what} holds no data for its {count:,} elements"
        else:
            where = f" (data found in {', '.join(others)})" if others else ""
            message = f"{what}: {name} holds {stored:,} values, dims {_dims(record)} need {count * per:,}{where}"
        out.problems.append(FileProblem("length", message, record.name, record.scope))
        out.unreadable[record.key] = "data length wrong"
        out.reported.add(record.key)
        return
    typed = record.typed.get(name)
    scannable = _SCANNABLE_TYPED.get(record.dtype) == name
    if typed is not None and scannable and typed.packed and len(typed.spans) == 1:
        start, end = typed.spans[0]
        out.extents[record.key] = Extent(model_fd, start, end - start)
    elif count:
        out.unreadable[record.key] = f"{name} values"


def _typed_count(record: TensorRecord, name: str, model_fd: int | RangedBuffer) -> int | None:
    typed = record.typed.get(name)
    if typed is None:
        return 0
    if name == "string_data":
        return len(typed.spans) + typed.unpacked
    width = _FIXED_WIDTH.get(name)
    total = typed.unpacked
    for start, end in typed.spans:
        if width is not None:
            if (end - start) % width:
                return None
            total += (end - start) // width
        else:
            total += count_varints(Extent(model_fd, start, end - start))
    return total


def _dims(record: TensorRecord) -> str:
    return "x".join(str(d) for d in record.dims or ()) or "scalar"


def _what(record: TensorRecord) -> str:
    kind = {"initializer": "initializer", "constant": "Constant"}.get(record.origin, "tensor")
    return f"{kind} {quoted(record.name)}"
