"""Benchmark: shape confirmation (`onnxaudit shapes`) against plain onnxruntime runs of the same model.

Not a test: run it by hand and paste the output into BENCHMARKS.md.

    python scripts/bench_shapes.py [--repeat N] [MODEL.onnx ...]

For each model it prints the median wall-clock seconds of
  plain       InferenceSession(path) with default options + one run, in this process;
  plain+proc  the same in a fresh `python -c` (the cost of isolation alone: interpreter + imports);
  confirm     onnxaudit.shapes.confirm_path: read the structure, strict inference, a child process with
              limits running every value as an output (optimizations off), and the comparison;
and the ratios confirm/plain and confirm/(plain+proc); the same for `confirm --optimized` (onnxruntime's
graph optimizations left on). Without MODEL arguments it uses the bundled
resnet_tiny and two synthetic models written to a temporary folder (a deep CNN with large activations
and a weight-heavy MLP).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from onnxaudit.shapes import ShapeOptions, confirm_path

ROOT = Path(__file__).resolve().parent.parent
RNG = np.random.default_rng(0)


def _weight(name: str, dims: tuple[int, ...]) -> onnx.TensorProto:
    return numpy_helper.from_array((RNG.standard_normal(dims) * 0.05).astype(np.float32), name)


def deep_cnn(path: Path, layers: int = 24, channels: int = 64, side: int = 112, batch: int = 4) -> Path:
    """Conv3x3+Relu x `layers` at full resolution: many large activations, small weights."""
    nodes, inits, prev = [], [], "x"
    for i in range(layers):
        inits += [_weight(f"c{i}.W", (channels, channels, 3, 3)), _weight(f"c{i}.B", (channels,))]
        nodes.append(helper.make_node("Conv", [prev, f"c{i}.W", f"c{i}.B"], [f"c{i}"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        prev = f"r{i}"
    nodes += [
        helper.make_node("GlobalAveragePool", [prev], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc.W", "fc.B"], ["y"], transB=1),
    ]
    inits += [_weight("fc.W", (1000, channels)), _weight("fc.B", (1000,))]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, channels, side, side])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 1000])
    model = helper.make_model(helper.make_graph(nodes, "deep_cnn", [x], [y], inits))
    model.opset_import[0].version = 17
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def wide_mlp(path: Path, layers: int = 6, width: int = 4096) -> Path:
    """MatMul+Add+Relu x `layers` of width x width: about 400 MB of weights, tiny activations."""
    nodes, inits, prev = [], [], "x"
    for i in range(layers):
        inits += [_weight(f"d{i}.W", (width, width)), _weight(f"d{i}.B", (width,))]
        nodes += [
            helper.make_node("MatMul", [prev, f"d{i}.W"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", f"d{i}.B"], [f"a{i}"]),
            helper.make_node("Relu", [f"a{i}"], [f"r{i}"]),
        ]
        prev = f"r{i}"
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])
    y = helper.make_tensor_value_info(prev, TensorProto.FLOAT, ["batch", width])
    model = helper.make_model(helper.make_graph(nodes, "wide_mlp", [x], [y], inits))
    model.opset_import[0].version = 17
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


_PLAIN = """
import sys, numpy as np, onnxruntime as ort
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
feeds = {}
for i in s.get_inputs():
    shape = [d if isinstance(d, int) else 1 for d in i.shape]
    feeds[i.name] = np.random.default_rng(0).random(shape, dtype=np.float32)
s.run(None, feeds)
"""


def plain_run(path: Path) -> None:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {}
    for item in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in item.shape]
        feeds[item.name] = np.random.default_rng(0).random(shape, dtype=np.float32)
    session.run(None, feeds)


def plain_process(path: Path) -> None:
    subprocess.run([sys.executable, "-I", "-c", _PLAIN, str(path)], check=True)


def confirm(path: Path, optimized: bool = False) -> None:
    _, check = confirm_path(path, ShapeOptions(optimized=optimized))
    if check.status != "confirmed":
        raise SystemExit(f"{path}: {check.status}: {check.message or check.findings}")


def confirm_optimized(path: Path) -> None:
    confirm(path, optimized=True)


def _cpu() -> float:
    """user + sys seconds of this process and of its waited-for children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def medians(fn, path: Path, repeat: int) -> tuple[float, float]:
    """Median (wall, cpu) seconds of `fn(path)`: the machine is shared, and cpu time is the steadier one."""
    fn(path)  # warm the page cache and imports
    walls, cpus = [], []
    for _ in range(repeat):
        cpu, start = _cpu(), time.perf_counter()
        fn(path)
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]} · onnxruntime {ort.__version__} · onnx {onnx.__version__} · "
          f"{os.cpu_count()} CPUs · load average {os.getloadavg()[0]:.1f} · median of {args.repeat} runs, "
          "wall seconds (cpu seconds: user + sys, children included)")  # fmt: skip
    columns = ("plain", "plain+proc", "confirm", "confirm --optimized")
    with tempfile.TemporaryDirectory() as tmp:
        models = args.models or [
            ROOT / "models/torch/resnet_tiny__legacy_nofold.onnx",
            deep_cnn(Path(tmp) / "deep_cnn.onnx"),
            wide_mlp(Path(tmp) / "wide_mlp.onnx"),
        ]
        ratios = ("confirm / plain", "confirm / plain+proc", "--optimized / plain+proc")
        print(f"| model | MB | {' | '.join(columns)} | {' | '.join(ratios)} |")
        print("|---|---:|" + "---:|" * (len(columns) + 3))
        for path in models:
            runs = [medians(fn, path, args.repeat) for fn in (plain_run, plain_process, confirm, confirm_optimized)]
            (plain, plain_cpu), (proc, proc_cpu), (checked, checked_cpu), (opt, opt_cpu) = runs
            cells = [f"{wall:.3f} ({cpu:.2f})" for wall, cpu in runs]
            factors = [
                f"{checked / plain:.1f}x ({checked_cpu / plain_cpu:.1f}x)",
                f"{checked / proc:.2f}x ({checked_cpu / proc_cpu:.2f}x)",
                f"{opt / proc:.2f}x ({opt_cpu / proc_cpu:.2f}x)",
            ]
            size = path.stat().st_size / 2**20
            print(f"| {path.name} | {size:.1f} | {' | '.join(cells)} | {' | '.join(factors)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
