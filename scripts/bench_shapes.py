"""Benchmark: shape confirmation (`onnxaudit shapes`) against plain onnxruntime runs of the same model.

Not a test: run it by hand and paste the output into BENCHMARKS.md.

    python scripts/bench_shapes.py [--repeat N] [MODEL.onnx ...]
    python scripts/bench_shapes.py --write DIR        # write the synthetic models to DIR, then exit
    python scripts/bench_shapes.py --plain MODEL.onnx # one plain onnxruntime run, nothing else imported
    python scripts/bench_shapes.py --pairs [--repeat N] [--method M] MODEL.onnx ...
                                                      # whole processes, A B A B: `onnxaudit shapes MODEL`
                                                      # against `python -I bench_shapes.py --plain MODEL`

For each model it prints the median wall-clock seconds of
  plain       InferenceSession(path) with default options + one run, in this process;
  plain+proc  the same in a fresh `python -c` (the cost of isolation alone: interpreter + imports);
  default     onnxaudit.shapes.confirm_path without a method (the values' sizes choose);
  profile     the same with --method profile: read the structure, strict inference, a child
              process with limits running the model once with onnxruntime's profiler on
              (optimizations off), reading the profile back, and the comparison;
  outputs     the same with --method outputs: every value a graph output, kept until the run ends;
  outputs --optimized  the same with onnxruntime's graph optimizations left on;
and the ratios of each to plain and to plain+proc. This process has numpy's threads, so its
children are started as fresh interpreters (a single-threaded `onnxaudit` forks them instead): the
--pairs mode measures what a user runs. Without MODEL arguments it uses the bundled
resnet_tiny and three synthetic models written to a temporary folder (a deep CNN with large
activations, a weight-heavy MLP, and a chain of many tiny nodes).
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
import onnxruntime as ort

# onnx and onnxaudit are imported where they are used, so that `--plain` pays only for numpy and
# onnxruntime, like any isolated run
ROOT = Path(__file__).resolve().parent.parent
RNG = np.random.default_rng(0)


def _weight(name: str, dims: tuple[int, ...]):
    from onnx import numpy_helper

    return numpy_helper.from_array((RNG.standard_normal(dims) * 0.05).astype(np.float32), name)


def _save(model, path: Path) -> Path:
    model.opset_import[0].version = 17
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def deep_cnn(path: Path, layers: int = 24, channels: int = 64, side: int = 112, batch: int = 4) -> Path:
    """Conv3x3+Relu x `layers` at full resolution: many large activations, small weights."""
    from onnx import TensorProto, helper

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
    return _save(helper.make_model(helper.make_graph(nodes, "deep_cnn", [x], [y], inits)), path)


def wide_mlp(path: Path, layers: int = 6, width: int = 4096) -> Path:
    """MatMul+Add+Relu x `layers` of width x width: about 400 MB of weights, tiny activations."""
    from onnx import TensorProto, helper

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
    return _save(helper.make_model(helper.make_graph(nodes, "wide_mlp", [x], [y], inits)), path)


def long_chain(path: Path, nodes: int = 20_000, width: int = 64) -> Path:
    """`nodes` alternating Relu/Neg over a (1, width) tensor: per-node costs, no memory to speak of."""
    from onnx import TensorProto, helper

    chain = [helper.make_node("Relu" if i % 2 else "Neg", [f"v{i}"], [f"v{i + 1}"], name=f"n{i}") for i in range(nodes)]
    x = helper.make_tensor_value_info("v0", TensorProto.FLOAT, [1, width])
    y = helper.make_tensor_value_info(f"v{nodes}", TensorProto.FLOAT, [1, width])
    return _save(helper.make_model(helper.make_graph(chain, "long_chain", [x], [y])), path)


def synthetic(folder: Path) -> list[Path]:
    return [
        deep_cnn(folder / "deep_cnn.onnx"),
        wide_mlp(folder / "wide_mlp.onnx"),
        long_chain(folder / "long_chain.onnx"),
    ]


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


def confirm(path: Path, method: str | None = "profile", optimized: bool = False) -> None:
    from onnxaudit.shapes.confirm import ShapeOptions, confirm_path

    _, check = confirm_path(path, ShapeOptions(method=method, optimized=optimized))
    if check.status != "confirmed" or check.method != (method or check.method):
        raise SystemExit(f"{path}: {check.status} ({check.method}): {check.message or check.findings}")


def confirm_default(path: Path) -> None:
    confirm(path, method=None)


def confirm_outputs(path: Path) -> None:
    confirm(path, method="outputs")


def confirm_optimized(path: Path) -> None:
    confirm(path, method="outputs", optimized=True)


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


def _user_env() -> dict[str, str]:
    """This environment, except that Python may write its bytecode caches: an installed onnxaudit has
    them (pip compiles them), as numpy and onnxruntime do; the warm-up writes onnxaudit's. Without
    them every run would compile onnxaudit's sources again (~0.1 s measured)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _timed_process(argv: list[str]) -> tuple[float, float, float]:
    """(wall s, cpu s, peak MiB) of one whole process; cpu and peak count its waited-for children
    (the confirmation child) too, as the kernel accounts them at wait4."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, env=_user_env())
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited with {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _onnxaudit_command() -> list[str]:
    script = Path(sys.executable).with_name("onnxaudit")  # the console script a user runs
    return [str(script)] if script.exists() else [sys.executable, "-m", "onnxaudit"]


def pairs(models: list[Path], repeat: int, method: str | None) -> None:
    """Whole processes timed in turn, A B A B, one warm-up pair then `repeat` counted pairs; medians,
    and the ratio taken pair by pair (a noisy moment hits both halves of a pair alike)."""
    extra = ["--method", method] if method else []
    print(f"load average {os.getloadavg()[0]:.1f} at the start · {repeat} pairs after one warm-up")
    print(
        "| model | A wall s | A cpu s | A peak MiB | plain wall s | plain cpu s | plain peak MiB "
        "| A/plain wall | A/plain cpu |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for path in models:
        a_cmd = [*_onnxaudit_command(), "shapes", str(path), *extra]
        b_cmd = [sys.executable, "-I", str(Path(__file__).resolve()), "--plain", str(path)]
        rows = []
        for k in range(repeat + 1):
            a, b = _timed_process(a_cmd), _timed_process(b_cmd)
            if k:
                rows.append((a, b))
        med = statistics.median
        cells = [med(r[i][j] for r in rows) for i in (0, 1) for j in (0, 1, 2)]
        ratio_wall = med(a[0] / b[0] for a, b in rows)
        ratio_cpu = med(a[1] / b[1] for a, b in rows)
        print(
            f"| {path.stem} | {cells[0]:.3f} | {cells[1]:.3f} | {cells[2]:.1f} | {cells[3]:.3f} | {cells[4]:.3f} "
            f"| {cells[5]:.1f} | {ratio_wall:.2f}x | {ratio_cpu:.2f}x |",
            flush=True,
        )
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--write", type=Path, metavar="DIR", help="write the synthetic models to DIR and exit")
    parser.add_argument("--plain", action="store_true", help="run each MODEL once in plain onnxruntime and exit")
    parser.add_argument("--pairs", action="store_true", help="whole processes: onnxaudit shapes vs --plain, A B A B")
    parser.add_argument("--method", choices=("profile", "outputs"), help="with --pairs: the shapes method")
    args = parser.parse_args()
    if args.plain:
        for path in args.models:
            plain_run(path)
        return 0
    if args.pairs:
        pairs(args.models, args.repeat, args.method)
        return 0
    if args.write:
        args.write.mkdir(parents=True, exist_ok=True)
        for path in synthetic(args.write):
            print(path)
        return 0
    import onnx

    print(f"python {sys.version.split()[0]} · onnxruntime {ort.__version__} · onnx {onnx.__version__} · "
          f"{os.cpu_count()} CPUs · load average {os.getloadavg()[0]:.1f} · median of {args.repeat} runs, "
          "wall seconds (cpu seconds: user + sys, children included)")  # fmt: skip
    timed = {
        "plain": plain_run,
        "plain+proc": plain_process,
        "default": confirm_default,
        "profile": confirm,
        "outputs": confirm_outputs,
        "outputs --optimized": confirm_optimized,
    }
    with tempfile.TemporaryDirectory() as tmp:
        models = args.models or [ROOT / "models/torch/resnet_tiny__legacy_nofold.onnx", *synthetic(Path(tmp))]
        ratios = [f"{name} / {base}" for name in list(timed)[2:] for base in ("plain", "plain+proc")]
        print(f"| model | MB | {' | '.join(timed)} | {' | '.join(ratios)} |")
        print("|---|---:|" + "---:|" * (len(timed) + len(ratios)))
        for path in models:
            runs = {name: medians(fn, path, args.repeat) for name, fn in timed.items()}
            cells = [f"{wall:.3f} ({cpu:.2f})" for wall, cpu in runs.values()]
            factors = []
            for name in list(timed)[2:]:
                (wall, cpu) = runs[name]
                for base in ("plain", "plain+proc"):
                    base_wall, base_cpu = runs[base]
                    factors.append(f"{wall / base_wall:.2f}x ({cpu / base_cpu:.2f}x)")
            size = path.stat().st_size / 2**20
            print(f"| {path.name} | {size:.1f} | {' | '.join(cells)} | {' | '.join(factors)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
