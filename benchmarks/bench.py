"""Whole-process benchmarks of `onnxaudit summary` against `onnx.load` + a naive count (and peers).

    python benchmarks/bench.py generate [--out DIR]      # synthesize the models (deterministic)
    python benchmarks/bench.py run [--out DIR] [--runs 5] [--only NAME ...] [--peers PYTHON]
    python benchmarks/bench.py stages MODEL [--format text]  # cpu seconds per pipeline stage, one process
    python benchmarks/bench.py floor MODEL               # cpu seconds before any analysis: the pure-Python floor
    python benchmarks/bench.py peers MODEL ... --peers PYTHON [--rounds 3] [--external MODEL ...]
                                                         # onnxaudit and its peers on each model, side by side

Models go under DIR (default: $TMPDIR/onnxaudit-bench), never into the repository. Large weights are
streamed to disk in 1 MiB blocks, and the 7B model's external data is a sparse file (truncate), so the
suite needs about 2 GB of real disk. Each figure is a separate process: wall time from start to exit,
peak RSS from the kernel's accounting of that process (wait4's ru_maxrss); medians over --runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_OUT = Path(tempfile.gettempdir()) / "onnxaudit-bench"
FLOAT, INT64, FLOAT16 = 1, 7, 10
BYTES = {FLOAT: 4, INT64: 8, FLOAT16: 2}

# ---------------------------------------------------------------- graph recipe


@dataclass
class Recipe:
    """Nodes plus initializers given by dims only; data is written when the file is."""

    nodes: list = field(default_factory=list)
    weights: list[tuple[str, int, tuple[int, ...]]] = field(default_factory=list)  # name, dtype, dims
    small: list = field(default_factory=list)  # small TensorProtos (shape constants), embedded
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    params: int = 0  # what a correct counter reports: every weight, no shape constants

    def weight(self, name: str, dims: Sequence[int], dtype: int = FLOAT) -> str:
        self.weights.append((name, dtype, tuple(dims)))
        count = 1
        for d in dims:
            count *= d
        self.params += count
        return name

    def node(self, op: str, inputs: Sequence[str], name: str, **attrs) -> str:
        from onnx import helper

        out = f"{name}_output_0"
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=name, **attrs))
        return out


def _ints(name: str, values: Sequence[int]):
    from onnx import TensorProto, helper

    return helper.make_tensor(name, TensorProto.INT64, [len(values)], list(values))


def decoder(layers: int, d: int, ffn: int, vocab: int, heads: int, dtype: int = FLOAT) -> Recipe:
    """A Llama-shaped decoder as torch.onnx writes it: RMSNorm spelled out, q/k/v/o, SwiGLU MLP."""
    from onnx import TensorProto, helper

    r = Recipe()
    hd = d // heads
    r.inputs.append(helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]))
    r.small += [_ints("shape.heads", [0, 0, heads, hd]), _ints("shape.model", [0, 0, d])]
    for name, number in (("two", 2.0), ("eps", 1e-6), ("scale", float(hd) ** 0.5)):  # scalars: Constant nodes
        r.nodes.append(helper.make_node("Constant", [], [name], name=f"/Constant_{name}",
                                        value=helper.make_tensor(name, dtype, [], [number])))  # fmt: skip
    h = r.node("Gather", [r.weight("model.embed_tokens.weight", [vocab, d], dtype), "input_ids"], "/model/embed/Gather")

    def rms(x: str, prefix: str, key: str) -> str:
        p = r.node("Pow", [x, "two"], f"{prefix}/Pow")
        m = r.node("ReduceMean", [p], f"{prefix}/ReduceMean", axes=[-1], keepdims=1)
        a = r.node("Add", [m, "eps"], f"{prefix}/Add")
        s = r.node("Sqrt", [a], f"{prefix}/Sqrt")
        v = r.node("Div", [x, s], f"{prefix}/Div")
        return r.node("Mul", [v, r.weight(f"{key}.weight", [d], dtype)], f"{prefix}/Mul")

    def proj(x: str, prefix: str, key: str, n_in: int, n_out: int) -> str:
        return r.node("MatMul", [x, r.weight(f"{key}.weight", [n_in, n_out], dtype)], f"{prefix}/MatMul")

    for i in range(layers):
        p, k = f"/model/layers.{i}", f"model.layers.{i}"
        x = rms(h, f"{p}/input_layernorm", f"{k}.input_layernorm")
        qkv = []
        for name in ("q", "k", "v"):
            t = proj(x, f"{p}/self_attn/{name}_proj", f"{k}.self_attn.{name}_proj", d, d)
            t = r.node("Reshape", [t, "shape.heads"], f"{p}/self_attn/Reshape_{name}")
            qkv.append(r.node("Transpose", [t], f"{p}/self_attn/Transpose_{name}", perm=[0, 2, 1, 3]))
        kt = r.node("Transpose", [qkv[1]], f"{p}/self_attn/Transpose_kt", perm=[0, 1, 3, 2])
        s = r.node("MatMul", [qkv[0], kt], f"{p}/self_attn/MatMul_qk")
        s = r.node("Div", [s, "scale"], f"{p}/self_attn/Div")
        s = r.node("Softmax", [s], f"{p}/self_attn/Softmax", axis=-1)
        a = r.node("MatMul", [s, qkv[2]], f"{p}/self_attn/MatMul_av")
        a = r.node("Transpose", [a], f"{p}/self_attn/Transpose_out", perm=[0, 2, 1, 3])
        a = r.node("Reshape", [a, "shape.model"], f"{p}/self_attn/Reshape_out")
        a = proj(a, f"{p}/self_attn/o_proj", f"{k}.self_attn.o_proj", d, d)
        h = r.node("Add", [h, a], f"{p}/Add_attn")
        x = rms(h, f"{p}/post_attention_layernorm", f"{k}.post_attention_layernorm")
        g = proj(x, f"{p}/mlp/gate_proj", f"{k}.mlp.gate_proj", d, ffn)
        g = r.node("Mul", [g, r.node("Sigmoid", [g], f"{p}/mlp/act_fn/Sigmoid")], f"{p}/mlp/act_fn/Mul")
        u = proj(x, f"{p}/mlp/up_proj", f"{k}.mlp.up_proj", d, ffn)
        m = proj(r.node("Mul", [g, u], f"{p}/mlp/Mul"), f"{p}/mlp/down_proj", f"{k}.mlp.down_proj", ffn, d)
        h = r.node("Add", [h, m], f"{p}/Add_mlp")
    h = rms(h, "/model/norm", "model.norm")
    logits = proj(h, "/lm_head", "lm_head", d, vocab)
    r.outputs.append(helper.make_tensor_value_info(logits, dtype, ["batch", "seq", vocab]))
    return r


def resnet50() -> Recipe:
    """ResNet-50 as torch.onnx writes it without Conv+BN folding: 25.6M parameters, 53 BNs."""
    from onnx import TensorProto, helper

    r = Recipe()
    r.inputs.append(helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224]))

    def conv_bn(x: str, path: str, key: str, bn_key: str, c_in: int, c_out: int, k: int, stride: int) -> str:
        w = r.weight(f"{key}.weight", [c_out, c_in, k, k])
        x = r.node("Conv", [x, w], f"{path}/Conv", kernel_shape=[k, k], strides=[stride] * 2, pads=[k // 2] * 4)
        stats = [r.weight(f"{bn_key}.{n}", [c_out]) for n in ("weight", "bias", "running_mean", "running_var")]
        return r.node("BatchNormalization", [x, *stats], f"{path.rsplit('/', 1)[0]}/{bn_key.split('.')[-1]}/BN")

    x = conv_bn("input", "/conv1", "conv1", "bn1", 3, 64, 7, 2)
    x = r.node("Relu", [x], "/relu/Relu")
    x = r.node("MaxPool", [x], "/maxpool/MaxPool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    c_in = 64
    for stage, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True), start=1):
        for b in range(blocks):
            p, k = f"/layer{stage}/layer{stage}.{b}", f"layer{stage}.{b}"
            stride = 2 if b == 0 and stage > 1 else 1
            y = r.node(
                "Relu", [conv_bn(x, f"{p}/conv1", f"{k}.conv1", f"{k}.bn1", c_in, width, 1, 1)], f"{p}/relu/Relu"
            )
            y = conv_bn(y, f"{p}/conv2", f"{k}.conv2", f"{k}.bn2", width, width, 3, stride)
            y = r.node("Relu", [y], f"{p}/relu_1/Relu")
            y = conv_bn(y, f"{p}/conv3", f"{k}.conv3", f"{k}.bn3", width, width * 4, 1, 1)
            if b == 0:
                x = conv_bn(x, f"{p}/downsample/downsample.0", f"{k}.downsample.0", f"{k}.downsample.1",
                            c_in, width * 4, 1, stride)  # fmt: skip
            x = r.node("Relu", [r.node("Add", [y, x], f"{p}/Add")], f"{p}/relu_2/Relu")
            c_in = width * 4
    x = r.node("GlobalAveragePool", [x], "/avgpool/GlobalAveragePool")
    x = r.node("Flatten", [x], "/Flatten", axis=1)
    y = r.node("Gemm", [x, r.weight("fc.weight", [1000, 2048]), r.weight("fc.bias", [1000])], "/fc/Gemm", transB=1)
    r.outputs.append(helper.make_tensor_value_info(y, TensorProto.FLOAT, ["N", 1000]))
    return r


# ---------------------------------------------------------------- writing files


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _block() -> bytes:
    """1 MiB of deterministic, non-trivial bytes (weights are streamed as repeats of it)."""
    import numpy as np

    return (np.random.default_rng(6).standard_normal(1 << 18).astype(np.float32) * 0.02).tobytes()


def _stream(f, nbytes: int, block: bytes) -> None:
    while nbytes > 0:
        chunk = block[: min(nbytes, len(block))]
        f.write(chunk)
        nbytes -= len(chunk)


def write_model(recipe: Recipe, path: Path, external: bool = False) -> dict:
    """Serialize the recipe field by field, streaming weight bytes, so a 1.5 GB model is written
    without holding it in memory. `external`: weights go to a sparse `<name>.data` beside it."""
    from onnx import ModelProto, TensorProto, helper

    graph = helper.make_graph(recipe.nodes, "bench", recipe.inputs, recipe.outputs, recipe.small)
    head = ModelProto(ir_version=8, producer_name="onnxaudit-bench", opset_import=[helper.make_opsetid("", 17)])
    headers: list[tuple[bytes, int]] = []  # serialized TensorProto without data, data bytes to stream
    offset = 0
    data_name = path.name + ".data"
    for name, dtype, dims in recipe.weights:
        count = 1
        for d in dims:
            count *= d
        nbytes = count * BYTES[dtype]
        tensor = TensorProto(name=name, data_type=dtype, dims=dims)
        if external:
            tensor.data_location = TensorProto.EXTERNAL
            for key, value in (("location", data_name), ("offset", str(offset)), ("length", str(nbytes))):
                tensor.external_data.add(key=key, value=value)
            offset += (nbytes + 4095) // 4096 * 4096
            headers.append((tensor.SerializeToString(), 0))
        else:
            headers.append((tensor.SerializeToString() + b"\x4a" + _varint(nbytes), nbytes))
    body = graph.SerializeToString()
    inits = [b"\x2a" + _varint(len(h) + n) for h, n in headers]  # GraphProto.initializer = 5
    graph_len = len(body) + sum(len(t) + len(h) + n for t, (h, n) in zip(inits, headers, strict=True))
    block = _block()
    with open(path, "wb") as f:
        f.write(head.SerializeToString() + b"\x3a" + _varint(graph_len))  # ModelProto.graph = 7
        f.write(body)
        for tag, (header, nbytes) in zip(inits, headers, strict=True):
            f.write(tag + header)
            _stream(f, nbytes, block)
    if external:
        with open(path.parent / data_name, "wb") as f:
            f.truncate(offset)  # a sparse file: no disk used, never read by onnxaudit
    return {
        "file": path.name,
        "file_bytes": path.stat().st_size,
        "external_bytes": offset if external else 0,
        "nodes": len(recipe.nodes),
        "initializers": len(recipe.weights) + len(recipe.small),
        "params": recipe.params,
    }


def _node_count_decoder(nodes: int) -> Recipe:
    """A tiny-width decoder with enough layers for `nodes` nodes (37 nodes per layer, 11 outside)."""
    return decoder(layers=max(1, (nodes - 11) // 37), d=16, ffn=32, vocab=64, heads=2)


def _dynamo_decoder(nodes: int) -> Recipe:
    """The node-count decoder as torch.onnx's dynamo exporter annotates it: each node's module stack as
    a Python list literal under pkg.torch.onnx.name_scopes (`['', 'model', 'model.layers.0', ...]`)."""
    r = _node_count_decoder(nodes)
    for n in r.nodes:
        parts = [p for p in n.name.split("/")[:-1] if p]  # /model/layers.3/self_attn/q_proj/MatMul
        scopes, path = [""], ""
        for part in parts:
            path = f"{path}.{part}" if path else part
            scopes.append(path)
        scopes.append(n.op_type.lower())
        n.metadata_props.add(key="pkg.torch.onnx.name_scopes", value=repr(scopes))
    return r


MODELS = {
    "resnet50": lambda: (resnet50(), False),
    "decoder_1.5GB": lambda: (decoder(layers=24, d=1024, ffn=2816, vocab=32000, heads=16), False),
    "llama7b_external": lambda: (decoder(32, 4096, 11008, 32000, 32, dtype=FLOAT16), True),
    "nodes_50k": lambda: (_node_count_decoder(50_000), False),
    "nodes_100k": lambda: (_node_count_decoder(100_000), False),
    "nodes_200k": lambda: (_node_count_decoder(200_000), False),
    "dynamo_40k": lambda: (_dynamo_decoder(40_000), False),
}


def generate(out: Path, names: Iterable[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    for name in names:
        start = time.perf_counter()
        recipe, external = MODELS[name]()
        manifest[name] = write_model(recipe, out / f"{name}.onnx", external)
        info = manifest[name]
        print(
            f"{name}: {info['file_bytes'] / 1e6:,.1f} MB file, {info['external_bytes'] / 1e9:,.1f} GB external, "
            f"{info['nodes']:,} nodes, {info['initializers']:,} initializers, {info['params']:,} params "
            f"({time.perf_counter() - start:.1f} s)",
            flush=True,
        )
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True))


# ---------------------------------------------------------------- the naive baseline


def naive(path: str, external: bool) -> None:
    """What people write first: onnx.load, then the product of every float initializer's dims."""
    import onnx

    model = onnx.load(path, load_external_data=external)
    total = 0
    for t in model.graph.initializer:
        if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16):
            count = 1
            for d in t.dims:
                count *= d
            total += count
    print(total)


# ---------------------------------------------------------------- stages


def stages(path: str, output: str = "json") -> None:
    """cpu seconds of each stage `summary --format OUTPUT` (json or text) runs, in this process and in audit()'s
    order, with the garbage collector paused as audit() and the CLI pause it; build_report is given the format
    as the CLI gives it (what that format never prints is left out), and the render is written to os.devnull
    in pieces and encoded, as the CLI writes it (write_text / write_json; until the thirteenth session the
    text stage timed render_text's one string). Start-up and imports are not in it: `python -X importtime -m
    onnxaudit --help` shows those."""
    import gc

    from onnxaudit import api
    from onnxaudit.cost.bound import model_cost
    from onnxaudit.count.conventions import CONVENTIONS
    from onnxaudit.render.summary import write_json, write_text

    gc.disable()
    times: dict[str, float] = {}

    def stage(name: str, func, *args):  # type: ignore[no-untyped-def]
        start = time.process_time()
        result = func(*args)
        times[name] = time.process_time() - start
        return result

    view = stage("load", api.load, path)
    roles = stage("classify", api.classify, view)
    table = stage("param_table", api.param_table, roles)
    layers = stage("group_layers", api.group_layers, view, table)
    framework = stage("framework_view", lambda: api.framework_report(api.framework_view(view, table, layers)))
    costs = stage("model_cost", model_cost, view, view, None, {}, table)
    keras = CONVENTIONS["keras"]
    report = stage(
        "build_report", api.build_report, view, table, layers, keras, "layer", None, framework, costs, output
    )
    findings = stage("normaxis", api.channel_axis_findings, view, table)
    report.notes += [finding.message for finding in findings]
    with open(os.devnull, "w", encoding="utf-8") as sink:  # written in pieces and encoded, as the CLI writes
        if output == "text":
            stage("render_text", write_text, report, sink)
        else:
            stage("render_json", write_json, report, sink)
    print(" ".join(f"{name} {seconds:.2f}" for name, seconds in times.items()), f"total {sum(times.values()):.2f}")


def floor(path: str) -> None:
    """What any pure-Python summary of this file costs before it analyses anything, next to what the
    stages cost now: the imports, reading the structure (wire walk and protobuf parse), reading each
    node's and initializer's fields once into tuples, and encoding a report's JSON from plain data
    with json's C encoder. cpu seconds, one process (the imports: whole processes, median of 3)."""
    import gc

    from onnxaudit import api
    from onnxaudit.model.read import read_without_weights
    from onnxaudit.render.summary import render_json

    imports = statistics.median(
        _cpu_of([sys.executable, "-c", "import onnxaudit.api, onnxaudit.cli.main, onnxaudit.render.summary"])
        for _ in range(3)
    )
    gc.disable()
    start = time.process_time()
    model = read_without_weights(Path(path)).model
    structure = time.process_time() - start
    start = time.process_time()
    nodes = [(n.name, n.op_type, n.domain, tuple(n.input[:]), tuple(n.output[:]), len(n.attribute))
             for n in model.graph.node]  # fmt: skip
    tensors = [(t.name, t.data_type, tuple(t.dims[:])) for t in model.graph.initializer]
    fields = time.process_time() - start
    plain = json.loads(render_json(api.audit(path)))
    start = time.process_time()
    with open(os.devnull, "w") as sink:
        sink.write(json.dumps(plain, sort_keys=True))  # json.dump would take the pure-Python encoder
    encode = time.process_time() - start
    total = imports + structure + fields + encode
    print(
        f"{len(nodes):,} nodes, {len(tensors):,} initializers: imports {imports:.2f} structure {structure:.2f} "
        f"fields {fields:.2f} encode {encode:.2f} floor {total:.2f} (cpu seconds)"
    )


def _cpu_of(cmd: Sequence[str]) -> float:
    """user + sys cpu seconds of one whole process."""
    before = os.times()
    subprocess.run(cmd, check=True)
    after = os.times()
    return (after.children_user - before.children_user) + (after.children_system - before.children_system)


# ---------------------------------------------------------------- measuring


@dataclass
class Sample:
    wall: float
    rss_mb: float
    stdout: bytes
    code: int
    cpu: float = 0.0  # user + sys seconds: steadier than wall on a shared machine


def measure(cmd: Sequence[str], timeout: float) -> Sample:
    """One whole process: wall time to exit and the kernel's peak RSS for it (wait4)."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = -9
                return Sample(float("inf"), usage.ru_maxrss / 1024, b"", -9, usage.ru_utime + usage.ru_stime)
            time.sleep(0.002)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return Sample(wall, usage.ru_maxrss / 1024, out.read(), proc.returncode, usage.ru_utime + usage.ru_stime)


def median_of(cmd: Sequence[str], runs: int, timeout: float) -> tuple[float, float, Sample]:
    """Median wall seconds, median peak RSS (MB), and the last sample (its cpu is the median cpu)."""
    measure(cmd, timeout)  # warm-up: page cache and imports
    samples = [measure(cmd, timeout) for _ in range(runs)]
    last = samples[-1]
    last.cpu = statistics.median(s.cpu for s in samples)
    return statistics.median(s.wall for s in samples), statistics.median(s.rss_mb for s in samples), last


def _ours_total(sample: Sample) -> int | None:
    try:
        return int(json.loads(sample.stdout)["totals"]["total"])
    except (ValueError, KeyError, TypeError):
        return None


def _peer_commands(peers: str, path: str) -> dict[str, list[str]]:
    return {
        "onnx-tool": [peers, "-c", f"import onnx_tool; onnx_tool.model_profile({path!r})"],
        "onnx-opcounter": [
            peers,
            "-c",
            "import onnx, onnx_opcounter; "
            f"print(onnx_opcounter.calculate_params(onnx.load({path!r}, load_external_data=False)))",
        ],
        "polygraphy": [str(Path(peers).parent / "polygraphy"), "inspect", "model", path],
    }


def run(out: Path, names: Sequence[str], runs: int, peers: str | None, timeout: float) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    onnxaudit = shutil.which("onnxaudit", path=str(Path(sys.executable).parent)) or "onnxaudit"
    rows = []
    for name in names:
        info = manifest[name]
        path = str(out / info["file"])
        external = info["external_bytes"] > 0
        ours_cmd = [onnxaudit, "summary", path, "--format", "json"]
        naive_cmd = [sys.executable, __file__, "naive", path] + (["--no-external"] if external else [])
        o_wall, o_rss, o_last = median_of(ours_cmd, runs, timeout)
        n_wall, n_rss, n_last = median_of(naive_cmd, runs, timeout)
        ours_total, naive_total = _ours_total(o_last), int(n_last.stdout or b"-1")
        row = {
            "model": name,
            "file_mb": info["file_bytes"] / 1e6,
            "external_gb": info["external_bytes"] / 1e9,
            "nodes": info["nodes"],
            "ours_s": o_wall,
            "ours_cpu": o_last.cpu,
            "ours_mb": o_rss,
            "naive_s": n_wall,
            "naive_cpu": n_last.cpu,
            "naive_mb": n_rss,
            "counts": "equal"
            if ours_total == naive_total == info["params"]
            else f"ours {ours_total} naive {naive_total} true {info['params']}",
        }
        if peers:
            for peer, cmd in _peer_commands(peers, path).items():
                p_wall, p_rss, p_last = median_of(cmd, max(1, runs // 2), timeout)
                row[f"{peer}_s"], row[f"{peer}_mb"] = p_wall, p_rss
                row[f"{peer}_code"] = p_last.code
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    print(table(rows))


def _side_by_side_commands(peers: str, path: str, external: bool) -> dict[str, list[str]]:
    """Every tool of the side-by-side table, on `path`; the first is onnxaudit, the rest compared with it.
    An external-data model is read as each tool reads it by default, except onnx.load (load_external_data=False,
    as in the naive count: loading the data is no fair fight)."""
    onnxaudit = shutil.which("onnxaudit", path=str(Path(sys.executable).parent)) or "onnxaudit"
    load = f"onnx.load({path!r}, load_external_data={not external})"
    bin_dir = Path(peers).parent
    return {
        "onnxaudit summary --format json": [onnxaudit, "summary", path, "--format", "json"],
        "onnx.load": [sys.executable, "-c", f"import onnx; {load}"],
        "onnx.load + count": [sys.executable, __file__, "naive", path] + (["--no-external"] if external else []),
        "onnx_opcounter": [peers, "-c", f"import onnx, onnx_opcounter; print(onnx_opcounter.calculate_params({load}))"],
        "polygraphy inspect model": [str(bin_dir / "polygraphy"), "inspect", "model", path],
        "onnxslim --inspect": [str(bin_dir / "onnxslim"), "--inspect", path],
        "onnx-tool model_profile": [peers, "-c", _ONNX_TOOL.format(load=load)],
    }


# onnx-tool refuses free input dims: each is given 1 (batch 1, a sequence of 1), as a user must do
_ONNX_TOOL = """import numpy, onnx, onnx_tool
model = {load}
shapes = {{i.name: numpy.zeros([d.dim_value or 1 for d in i.type.tensor_type.shape.dim],
                              numpy.int64 if i.type.tensor_type.elem_type == 7 else numpy.float32)
          for i in model.graph.input}}
onnx_tool.model_profile(model, dynamic_shapes=shapes)
"""


def side_by_side(paths: Sequence[str], peers: str, rounds: int, timeout: float, external: Sequence[str]) -> None:
    """Each tool on each model in turn (one warm-up round, then `rounds` rounds, the tools in the same order
    each round), so a comparison holds when the machine's speed drifts: medians of wall, cpu (user + sys, the
    process and its waited-for children) and peak RSS, and the median of each round's wall and cpu ratio to
    onnxaudit. A tool that ran out of `timeout` is not run again on that model and shows as "> timeout"."""
    for path in paths:
        commands = _side_by_side_commands(peers, path, path in external)
        samples: dict[str, list[Sample]] = {name: [] for name in commands}
        timed_out: set[str] = set()
        for round_ in range(rounds + 1):
            for name, cmd in commands.items():
                if name in timed_out:
                    continue
                sample = measure(cmd, timeout)
                # not kept: on Linux a child's peak RSS counts from this process's own at the fork
                sample.stdout = b""
                if sample.code == -9:
                    timed_out.add(name)
                if round_ or name in timed_out:  # round 0 warms the page cache and the imports
                    samples[name].append(sample)
        print(f"\n{Path(path).name} ({rounds} rounds, timeout {timeout:.0f} s)\n")
        print("| tool | wall s | cpu s | peak RSS MiB | wall / onnxaudit | cpu / onnxaudit | exit |")
        print("|---|---|---|---|---|---|---|")
        ours = samples[next(iter(commands))]
        for name, runs in samples.items():
            if name in timed_out:
                least = timeout / statistics.median(s.wall for s in ours)
                print(f"| {name} | > {timeout:.0f} | | | > {least:.0f}x | | killed |")
                continue
            wall = statistics.median(s.wall for s in runs)
            cpu = statistics.median(s.cpu for s in runs)
            rss = statistics.median(s.rss_mb for s in runs)
            wall_ratio = statistics.median(p.wall / o.wall for p, o in zip(runs, ours, strict=True))
            cpu_ratio = statistics.median(p.cpu / o.cpu for p, o in zip(runs, ours, strict=True))
            codes = sorted({s.code for s in runs})
            print(f"| {name} | {wall:.2f} | {cpu:.2f} | {rss:,.1f} | {wall_ratio:.2f}x | {cpu_ratio:.2f}x "
                  f"| {','.join(map(str, codes))} |")  # fmt: skip
        sys.stdout.flush()


def table(rows: list[dict]) -> str:
    head = (
        "| model | file | nodes | onnxaudit wall (cpu) | onnxaudit peak RSS | onnx.load+count wall (cpu) "
        "| peak RSS | time ratio | memory ratio | counts |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        size = f"{r['file_mb']:,.1f} MB" + (f" + {r['external_gb']:,.1f} GB ext." if r["external_gb"] else "")
        lines.append(
            f"| {r['model']} | {size} | {r['nodes']:,} | {r['ours_s']:.2f} s ({r['ours_cpu']:.2f}) "
            f"| {r['ours_mb']:,.0f} MB | {r['naive_s']:.2f} s ({r['naive_cpu']:.2f}) | {r['naive_mb']:,.0f} MB "
            f"| {r['naive_s'] / r['ours_s']:.1f}x "
            f"| {r['naive_mb'] / r['ours_mb']:.1f}x | {r['counts']} |"
        )
    peers = [k[:-2] for k in rows[0] if k.endswith("_s") and k not in ("ours_s", "naive_s")] if rows else []
    peers = [p for p in peers if f"{p}_mb" in rows[0]]
    if peers:
        lines += ["", "| model | " + " | ".join(f"{p} wall | {p} peak RSS" for p in peers) + " |"]
        lines.append("|" + "---|" * (1 + 2 * len(peers)))
        for r in rows:
            cells = []
            for p in peers:
                failed = r.get(f"{p}_code", 0) != 0
                wall = "timeout" if r[f"{p}_s"] == float("inf") else f"{r[f'{p}_s']:.2f} s"
                cells.append(f"{wall}{' (failed)' if failed and wall != 'timeout' else ''} | {r[f'{p}_mb']:,.0f} MB")
            lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("--out", type=Path, default=DEFAULT_OUT)
    gen.add_argument("--only", nargs="*", choices=sorted(MODELS), default=list(MODELS))
    bench = sub.add_parser("run")
    bench.add_argument("--out", type=Path, default=DEFAULT_OUT)
    bench.add_argument("--only", nargs="*", choices=sorted(MODELS), default=list(MODELS))
    bench.add_argument("--runs", type=int, default=5)
    bench.add_argument("--timeout", type=float, default=300.0, help="seconds before one run is killed")
    bench.add_argument("--peers", help="python of a venv with onnx-tool, onnx-opcounter and polygraphy")
    sbs = sub.add_parser("peers", help="every tool on each MODEL in turn, rounds alternating: one table per model")
    sbs.add_argument("models", nargs="+", metavar="MODEL")
    sbs.add_argument(
        "--peers", required=True, help="python of a venv with onnx-tool, onnx-opcounter, polygraphy, onnxslim"
    )
    sbs.add_argument("--rounds", type=int, default=3)
    sbs.add_argument("--timeout", type=float, default=120.0, help="seconds before one run is killed")
    sbs.add_argument("--external", nargs="*", default=[], metavar="MODEL", help="models with external data")
    count = sub.add_parser("naive")
    count.add_argument("model")
    count.add_argument("--no-external", action="store_true")
    stage_times = sub.add_parser("stages", help="cpu seconds per pipeline stage of summary --format json (or text)")
    stage_times.add_argument("model")
    stage_times.add_argument("--format", choices=("json", "text"), default="json", help="the summary's output format")
    floor_cost = sub.add_parser("floor", help="cpu seconds any pure-Python summary costs before analysis")
    floor_cost.add_argument("model")
    args = parser.parse_args(argv)
    if args.cmd == "generate":
        generate(args.out, args.only)
    elif args.cmd == "run":
        run(args.out, args.only, args.runs, args.peers, args.timeout)
    elif args.cmd == "peers":
        side_by_side(args.models, args.peers, args.rounds, args.timeout, args.external)
    elif args.cmd == "stages":
        stages(args.model, args.format)
    elif args.cmd == "floor":
        floor(args.model)
    else:
        naive(args.model, external=not args.no_external)
    return 0


if __name__ == "__main__":
    sys.exit(main())
