"""Rules on the file format: broken dims (OA301), stored length against dims (OA302), unsafe or out-of-range
external data (OA303, OA304) — the problems the file pass found — and IR or opset versions newer than the
installed onnx knows (OA305, OA306)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import lru_cache

from onnxaudit.check.context import CheckContext
from onnxaudit.check.data import ProblemKind
from onnxaudit.check.registry import Hit, Rule
from onnxaudit.io.onnxcore import IR_VERSION, onnx_opset_version, onnx_version, schema_defs
from onnxaudit.io.text import as_text


def _problems(kind: ProblemKind) -> Callable[[CheckContext], Iterator[Hit]]:
    def emit(ctx: CheckContext) -> Iterator[Hit]:
        for problem in ctx.file.problems:
            if problem.kind == kind:
                yield Hit(problem.message, "tensor", problem.name, problem.scope)

    return emit


@lru_cache(maxsize=1)
def known_opsets() -> dict[str, int]:
    """The newest opset of each standard domain the installed onnx has schemas for."""
    newest: dict[str, int] = {}
    for schema in schema_defs().get_all_schemas_with_history():
        domain = schema.domain or "ai.onnx"
        newest[domain] = max(newest.get(domain, 0), schema.since_version)
    newest["ai.onnx"] = max(newest.get("ai.onnx", 0), onnx_opset_version())
    return newest


def _ir_version(ctx: CheckContext) -> Iterator[Hit]:
    view = ctx.view
    if view.ir_version > IR_VERSION:
        yield Hit(f"IR version {view.ir_version} is newer than onnx {onnx_version()} knows (IR {IR_VERSION})", "model")


def _opsets(ctx: CheckContext) -> Iterator[Hit]:
    known = known_opsets()
    for raw, version in sorted(ctx.view.opsets.items()):
        domain = as_text(raw)
        if domain not in known:
            continue
        if version > known[domain]:
            message = f"opset {domain} {version} is newer than onnx {onnx_version()} knows ({known[domain]})"
            yield Hit(message, "model", domain)
        elif version < 1:
            yield Hit(f"opset {domain} {version} is not a valid version", "model", domain)


BAD_DIMS = Rule(
    "OA301",
    "bad-dims",
    "error",
    "file",
    summary="a negative dim, or dims whose product overflows int64 or exceeds 2**53",
    docs=(
        "A stored tensor whose dims are negative or multiply past what any real tensor holds. Loaders that trust "
        "the dims allocate the product (or wrap it around); onnxaudit reports it without building the model "
        "view, and the graph and value rules are skipped for that file."
    ),
    emit=_problems("dims"),
)
DATA_LENGTH = Rule(
    "OA302",
    "data-length-mismatch",
    "error",
    "file",
    summary="raw_data, typed data or external length disagreeing with dims x item size, or no data at all",
    docs=(
        "The bytes stored for a tensor do not hold dims x item size: truncated or padded raw_data, typed fields "
        "with too few or too many values, an external length that disagrees with the dims, or no data at all. "
        "Runtimes refuse the file or read past the tensor. The file was truncated or written by a broken tool."
    ),
    emit=_problems("length"),
)
EXTERNAL_UNSAFE = Rule(
    "OA303",
    "external-data-unsafe",
    "error",
    "file",
    summary="external data outside the model's folder, through a symlink, a hard link, a FIFO/device, missing",
    docs=(
        "External data must be a regular file inside the model's folder. A location with '..', an absolute "
        "path, a symlink, a hard link, a FIFO or a device lets a crafted model read any file the loader can "
        "(onnx CVE-2022-25882, CVE-2024-27318 and later link bypasses) or hang it. onnxaudit never opens it; "
        "do not load the model elsewhere either."
    ),
    emit=_problems("location"),
)
EXTERNAL_RANGE = Rule(
    "OA304",
    "external-data-range",
    "error",
    "file",
    summary="external offset/length not plain whole numbers, or past the end of the file",
    docs=(
        "The offset or length of a tensor's external data is not a plain non-negative whole number, or the "
        "range runs past the end of its data file. Loaders read garbage, fail, or (with a sparse file) "
        "allocate far more than the file holds."
    ),
    emit=_problems("range"),
)
UNSUPPORTED_IR = Rule(
    "OA305",
    "unsupported-ir",
    "error",
    "view",
    summary="IR version newer than the installed onnx knows",
    docs=(
        "The file declares an IR version newer than the installed onnx package supports: fields it does not "
        "know are ignored, so counts and checks may miss what they mean. Upgrade onnx (and the runtime), or "
        "re-export for an older IR."
    ),
    emit=_ir_version,
)
UNSUPPORTED_OPSET = Rule(
    "OA306",
    "unsupported-opset",
    "error",
    "view",
    summary="a standard domain's opset newer than the installed onnx knows (or < 1)",
    docs=(
        "An opset import newer than the installed onnx knows (or below 1, which does not exist): op semantics "
        "may differ from the ones onnxaudit and the runtime assume. Upgrade onnx and the runtime, or export "
        "with a lower opset."
    ),
    emit=_opsets,
)

RULES = (BAD_DIMS, DATA_LENGTH, EXTERNAL_UNSAFE, EXTERNAL_RANGE, UNSUPPORTED_IR, UNSUPPORTED_OPSET)
