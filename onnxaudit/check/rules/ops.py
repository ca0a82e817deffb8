"""Rules on the ops a graph uses: domains outside the ONNX standard (OA210) and ops a standard domain does
not define (OA213)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator

from onnxaudit.check.context import CheckContext
from onnxaudit.check.registry import Hit, Rule
from onnxaudit.io.onnxcore import schema_defs
from onnxaudit.io.text import as_text, quoted

STD_DOMAINS = frozenset({"", "ai.onnx"})
KNOWN_DOMAINS = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview", "ai.onnx.preview.training", "ai.onnx.training"}
)
ORT_DOMAINS = frozenset({"com.microsoft", "com.microsoft.nchwc", "com.ms.internal.nhwc", "com.microsoft.experimental"})
SHOWN_OPS = 5


def _domains(ctx: CheckContext) -> Iterator[Hit]:
    view = ctx.view
    ops: dict[str, Counter[str]] = defaultdict(Counter)
    for node in view.all_nodes():
        domain = as_text(node.domain)
        if domain in KNOWN_DOMAINS or (node.domain, node.op_type) in view.functions:
            continue
        ops[domain][as_text(node.op_type)] += 1
    for domain, counter in sorted(ops.items()):
        shown, n = _op_names(counter), sum(counter.values())
        if domain in ORT_DOMAINS:
            message = f"{n} nodes from {quoted(domain)} ({shown}) run on onnxruntime only"
            yield Hit(message, "domain", domain, "main", "info")
        else:
            message = f"{n} nodes from custom domain {quoted(domain)} ({shown}) need a runtime that implements them"
            yield Hit(message, "domain", domain)


def _unknown_ops(ctx: CheckContext) -> Iterator[Hit]:
    """Ops in a standard domain that onnx defines no schema for: an exporter's op left unconverted
    (tf2onnx and Keras 3 leave TensorFlow's `StatefulPartitionedCall` in ConvNeXt), which no runtime
    loads, or one a runtime registers there itself (onnxruntime's SimplifiedLayerNormalization)."""
    view = ctx.view
    ops: dict[str, Counter[str]] = defaultdict(Counter)
    for node in view.all_nodes():
        domain = as_text(node.domain)
        if domain not in KNOWN_DOMAINS or (node.domain, node.op_type) in view.functions:
            continue
        op = as_text(node.op_type)
        if not schema_defs().has_schema(op, "" if domain == "ai.onnx" else domain):
            ops[domain or "ai.onnx"][op] += 1
    for domain, counter in sorted(ops.items()):
        message = (
            f"{sum(counter.values())} nodes of ops that onnx does not define in {quoted(domain)} "
            f"({_op_names(counter)}): only a runtime that "
            "registers them loads the file (onnxruntime does for a few of its fusions; an op an exporter left "
            "unconverted loads nowhere)"
        )
        yield Hit(message, "domain", domain)


def _op_names(counter: Counter[str]) -> str:
    """The first five op names in order, and how many more."""
    shown = ", ".join(op for op, _ in sorted(counter.items())[:SHOWN_OPS])
    return shown + (f" and {len(counter) - SHOWN_OPS} more" if len(counter) > SHOWN_OPS else "")


CUSTOM_DOMAIN = Rule(
    "OA210",
    "custom-domain",
    "warning",
    "view",
    summary="ops from a non-standard domain (info for onnxruntime's `com.microsoft`)",
    docs=(
        "Ops outside the ONNX standard domains run only where a runtime implements them: onnxruntime's "
        "com.microsoft contrib ops (info: they run on onnxruntime, not on TensorRT, OpenVINO or a browser) or a "
        "custom domain that needs its own kernel library. Check the deployment target supports them."
    ),
    emit=_domains,
)
UNKNOWN_OP = Rule(
    "OA213",
    "unknown-op",
    "warning",
    "view",
    summary=(
        "an op onnx does not define in a standard domain: one an exporter left unconverted (TensorFlow's "
        "`StatefulPartitionedCall`) loads nowhere; onnxruntime registers a few of its fusions there "
        "(SimplifiedLayerNormalization)"
    ),
    docs=(
        "The node claims the standard domain but onnx has no schema for its op type. An op an exporter left "
        "unconverted (TensorFlow's StatefulPartitionedCall) loads in no runtime: re-export with the op "
        "supported. A few of onnxruntime's own fusions are registered in the standard domain and load there only."
    ),
    emit=_unknown_ops,
)

RULES = (CUSTOM_DOMAIN, UNKNOWN_OP)
