"""What a shape run is: its options and limits, and the plain data it reports (ShapeCheck)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from onnxaudit.errors import UsageError
from onnxaudit.shapes.defaults import DEFAULT_MAX_MEMORY, DEFAULT_TIMEOUT, METHODS

if TYPE_CHECKING:  # a summary without --run-shapes imports neither (nor fractions, json, onnxruntime's child)
    from onnxaudit.model.sizes import DimChoice
    from onnxaudit.shapes.sandbox import Child

# Domains onnxruntime's CPU build implements; anything else needs a custom-op library.
RUNTIME_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})
# Address space of an idle interpreter with numpy and onnxruntime loaded (about 330 MiB measured), rounded up.
BASE_BYTES = 512 * 2**20
# onnxruntime's profiler holds each executed node's event in memory until the run ends (1.8-3 KB
# measured, thread statistics included: counted at 1.5 KB, a lower bound) and writes about 850 bytes of
# JSON for it at the end (the file may take 4 KB a node before its write fails and it is read as cut).
PROFILE_EVENT_BYTES = 1536
PROFILE_FILE_BYTES_PER_NODE = 4096
# Without --method, keeping every value alive (outputs) is chosen while the values are small: a profile
# costs ~100 us per node (profiler, its JSON, reading it back), keeping values costs faulting in fresh
# pages (~1.6 ms per MB measured with deep_cnn); so outputs up to 64 KiB of values per node, at least
# 4 MiB, at most 64 MiB (and an eighth of --max-memory).
AUTO_BYTES_PER_NODE = 64 * 2**10
AUTO_MIN_BYTES = 4 * 2**20
AUTO_MAX_BYTES = 64 * 2**20

Shape = list[int | str | None]


@dataclass
class ShapeOptions:
    """How to run: dim bindings, real input files, limits, and whether onnxruntime may optimize."""

    dims: dict[str, int] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    max_memory: int = DEFAULT_MAX_MEMORY
    optimized: bool = False
    seed: int = 0
    method: str | None = None  # profile | outputs; None: chosen by the model's sizes (see choose_method)
    # a child started (with these limits) before the model was read, so its imports overlap the reading
    prestarted: Child | None = field(default=None, repr=False, compare=False)

    def start_child(self) -> Child:
        """A child process with this run's limits, started now (its owner closes it)."""
        from onnxaudit.shapes.sandbox import Child, limits  # only a shape run starts one

        return Child(limits(self.max_memory, self.timeout))

    @property
    def run_method(self) -> str:
        """profile, outputs, or auto (chosen once the model is read). A profile names the nodes
        onnxruntime ran, and an optimized graph's nodes are no longer the file's, so `optimized`
        needs the outputs method."""
        method = self.method or ("outputs" if self.optimized else "auto")
        if method not in (*METHODS, "auto"):
            raise UsageError(f"unknown shape method {method!r} (expected profile or outputs)")
        if method == "profile" and self.optimized:
            raise UsageError(
                "--optimized needs --method outputs: an optimized graph's nodes are not the file's, "
                "so its profile cannot be read back onto the file's values"
            )
        return method


@dataclass
class InputCheck:
    name: str
    dtype: str
    shape: list[int]
    values: str


@dataclass
class ValueCheck:
    """One main-graph value: what the file declares, what onnx infers, what onnxruntime produced."""

    name: str
    node: str
    op: str
    declared: Shape | None
    inferred: Shape | None
    actual: list[int] | None
    dtype: str | None
    shown: Shape | None  # actual dims, with the declared symbolic name where it binds consistently
    status: str  # confirmed | mismatch | not observed | not run
    problems: list[str] = field(default_factory=list)


@dataclass
class ShapeCheck:
    status: str  # confirmed | mismatch | refused | killed | not_runnable | failed
    message: str  # one line saying why, when nothing was confirmed
    bindings: dict[str, int]
    inputs: list[InputCheck]
    values: list[ValueCheck]
    findings: list[str]
    limits: list[str]
    optimized: bool
    timeout: float
    max_memory: int
    estimate_bytes: int | None = None
    onnxruntime: str = ""
    method: str = "outputs"  # how actual shapes were observed: profile | outputs
    choices: list[DimChoice] = field(default_factory=list)  # sizes chosen for free input dims, with reasons
    tries: list[str] = field(default_factory=list)  # sizes onnxruntime rejected before the last run, and why

    @property
    def exit_code(self) -> int:
        return {"confirmed": 0, "mismatch": 1}.get(self.status, 2)

    def source_text(self) -> str:
        bound = ", ".join(f"{k}={v}" for k, v in self.bindings.items())
        where = f" ({bound})" if bound else ""
        if self.status == "confirmed":
            return f"confirmed by onnxruntime{where}"
        if self.status == "mismatch":
            n = len(self.findings)
            return f"run in onnxruntime{where}: {n} mismatch{'es' if n != 1 else ''}, actual shapes shown"
        return f"onnx shape inference (static; not confirmed: {self.status.replace('_', ' ')})"


def fmt_shape(shape: Sequence[int | str | None] | None) -> str:
    if shape is None:
        return "?"
    dims = ["?" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"
