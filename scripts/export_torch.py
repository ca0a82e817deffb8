#!/usr/bin/env python3
"""Export small PyTorch models to ONNX in several ways, as real-exporter fixtures.

Install and run (CPU only; torch 2.13.0 CPU wheel):

    python3 -m venv /work/venvs/torch
    /work/venvs/torch/bin/pip install -r scripts/requirements-torch.txt
    /work/venvs/torch/bin/python scripts/export_torch.py            # writes models/torch/

    (options: --out DIR, --models seed_cnn,lstm, --kinds legacy_fold,dynamo)

For every model and export kind this writes models/torch/<model>__<kind>.onnx and,
beside it, <model>__<kind>.json with what torch itself reports about the model
(parameters, trainable parameters, buffers, BN running statistics, leaf modules,
state_dict entries), plus whether onnxruntime reproduces torch's output.
It also writes models/torch/README.md (what each exporter did, generated from the
files) and models/torch/FAILURES.md (export kinds that raised).

Everything is deterministic: fixed seeds, every bias / BN statistic set to random
non-zero values before export (exporters drop all-zero biases and identity BNs),
sorted JSON keys.  Running the script twice gives byte-identical files.
"""
from __future__ import annotations

import argparse
import collections
import copy
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import onnxscript
import torch
import torch.nn as nn

OPSET = 17
EXPORT_BATCH = 2  # batch used for the example input at export (1 would be specialised by torch.export)
CHECK_BATCH = 3  # batch used for the onnxruntime check (proves the batch dim is really dynamic)
ATOL = 1e-4

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "models" / "torch"


# ----------------------------------------------------------------------------------------------
# Models (attribute names are the state_dict keys / ONNX names)
# ----------------------------------------------------------------------------------------------
class SeedCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad2d(3)
        self.conv0 = nn.Conv2d(3, 32, 7)
        self.bn0 = nn.BatchNorm2d(32)
        self.relu = nn.ReLU()
        self.max_pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(32 * 32 * 32, 1)

    def forward(self, x):
        x = self.relu(self.bn0(self.conv0(self.pad(x))))
        x = self.flatten(self.max_pool(x))
        return torch.sigmoid(self.fc(x))


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock layout."""

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class ResNetTiny(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BasicBlock(16, 16), BasicBlock(16, 16))
        self.layer2 = nn.Sequential(
            BasicBlock(16, 32, 2, nn.Sequential(nn.Conv2d(16, 32, 1, 2, bias=False), nn.BatchNorm2d(32)))
        )
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def conv_bn_act(inp, out, kernel, stride=1, groups=1):
    """torchvision Conv2dNormActivation layout: Sequential(conv, bn, ReLU6) -> names .0/.1/.2"""
    return nn.Sequential(
        nn.Conv2d(inp, out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """torchvision.models.mobilenetv2.InvertedResidual layout (conv.0 expand, conv.1 dw, conv.2 project, conv.3 bn)."""

    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = inp * expand_ratio
        self.use_res_connect = stride == 1 and inp == oup
        self.conv = nn.Sequential(
            conv_bn_act(inp, hidden, 1),
            conv_bn_act(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        )

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2Tiny(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            conv_bn_act(3, 16, 3, 2),  # features.0
            InvertedResidual(16, 16, 1, 4),  # features.1 (residual)
            InvertedResidual(16, 24, 2, 4),  # features.2
        )
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Linear(24, num_classes)

    def forward(self, x):
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


class TiedLM(nn.Module):
    def __init__(self, vocab=100, dim=32):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.norm = nn.LayerNorm(dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        self.lm_head.weight = self.embed.weight  # tied

    def forward(self, input_ids):
        return self.lm_head(self.norm(self.embed(input_ids)))


class LSTMNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


class GRUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 16, batch_first=True)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out[:, -1])


BN_KINDS = ["legacy_fold", "legacy_nofold", "legacy_training", "dynamo", "dynamo_noopt"]
NO_BN_KINDS = ["legacy_fold", "legacy_nofold", "dynamo", "dynamo_noopt"]

# name -> (factory, input name, per-sample input shape, input dtype, export kinds)
MODELS = {
    "seed_cnn": (SeedCNN, "x", (3, 64, 64), torch.float32, BN_KINDS),
    "resnet_tiny": (ResNetTiny, "x", (3, 32, 32), torch.float32, BN_KINDS),
    "mobilenetv2_tiny": (MobileNetV2Tiny, "x", (3, 32, 32), torch.float32, BN_KINDS),
    "tied_lm": (TiedLM, "input_ids", (16,), torch.int64, NO_BN_KINDS),
    "lstm": (LSTMNet, "x", (10, 8), torch.float32, NO_BN_KINDS),
    "gru": (GRUNet, "x", (10, 8), torch.float32, NO_BN_KINDS),
}

KIND_OPTIONS = {
    # dynamo, do_constant_folding, training, optimize
    "legacy_fold": dict(dynamo=False, do_constant_folding=True, training="EVAL", optimize=None),
    "legacy_nofold": dict(dynamo=False, do_constant_folding=False, training="EVAL", optimize=None),
    "legacy_training": dict(dynamo=False, do_constant_folding=False, training="TRAINING", optimize=None),
    "dynamo": dict(dynamo=True, do_constant_folding=None, training="EVAL", optimize=True),
    "dynamo_noopt": dict(dynamo=True, do_constant_folding=None, training="EVAL", optimize=False),
}


def model_seed(name: str) -> int:
    return 1000 + sorted(MODELS).index(name)


def build_model(name: str) -> nn.Module:
    """Build the model with a fixed seed and make every bias / norm parameter / BN statistic non-trivial."""
    torch.manual_seed(model_seed(name))
    model = MODELS[name][0]()
    g = torch.Generator().manual_seed(model_seed(name) + 7)

    def uniform(t, lo, hi):
        with torch.no_grad():
            t.copy_(torch.rand(t.shape, generator=g, dtype=t.dtype) * (hi - lo) + lo)

    for mod in model.modules():
        if isinstance(mod, (nn.BatchNorm2d, nn.LayerNorm)):
            uniform(mod.weight, 0.5, 1.5)
            uniform(mod.bias, -0.5, 0.5)
        if isinstance(mod, nn.BatchNorm2d):
            uniform(mod.running_mean, -0.5, 0.5)
            uniform(mod.running_var, 0.5, 2.0)
            mod.num_batches_tracked.fill_(100)
        for pname, p in mod.named_parameters(recurse=False):
            if "bias" in pname and not isinstance(mod, (nn.BatchNorm2d, nn.LayerNorm)):
                uniform(p, -0.5, 0.5)
    # sanity: nothing trivial left for an exporter to drop
    for n, t in list(model.named_parameters()) + list(model.named_buffers()):
        if t.is_floating_point():
            assert bool((t != 0).all()), n
    return model.eval()


def example_input(name: str, batch: int, seed: int) -> torch.Tensor:
    _, _, shape, dtype, _ = MODELS[name]
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.int64:
        return torch.randint(0, 100, (batch, *shape), generator=g, dtype=torch.int64)
    return torch.randn((batch, *shape), generator=g)


# ----------------------------------------------------------------------------------------------
# What torch itself reports
# ----------------------------------------------------------------------------------------------
def torch_report(model: nn.Module) -> dict:
    params = sum(p.numel() for p in model.parameters())  # tied weights counted once
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    buffers = sum(b.numel() for b in model.buffers())
    running = sum(b.numel() for n, b in model.named_buffers() if n.rsplit(".", 1)[-1] in ("running_mean", "running_var"))
    nbt = sum(1 for n, _ in model.named_buffers() if n.rsplit(".", 1)[-1] == "num_batches_tracked")
    modules = []
    for mname, mod in model.named_modules():
        if any(True for _ in mod.children()):
            continue
        own_p = list(mod.parameters(recurse=False))
        own_b = list(mod.buffers(recurse=False))
        if not own_p and not own_b:
            continue
        modules.append(
            {
                "name": mname,
                "class": type(mod).__name__,
                "parameters": sum(p.numel() for p in own_p),
                "buffers": sum(b.numel() for b in own_b),
            }
        )
    param_names = {n for n, _ in model.named_parameters(remove_duplicate=False)}
    state = []
    seen = {}
    for sname, t in model.state_dict(keep_vars=True).items():
        entry = {"name": sname, "shape": list(t.shape), "kind": "parameter" if sname in param_names else "buffer"}
        key = (t.data_ptr(), tuple(t.shape), t.dtype)
        if key in seen:
            entry["tied_to"] = seen[key]  # only present for tied (shared) tensors
        else:
            seen[key] = sname
        state.append(entry)
    return {
        "parameters": params,
        "trainable_parameters": trainable,
        "buffers": buffers,
        "running_stats": running,
        "num_batches_tracked": nbt,
        "keras_equivalent": {"total": params + running, "trainable": params, "non_trainable": running},
        "modules": modules,
        "state_dict": state,
    }


# ----------------------------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------------------------
def export(name: str, kind: str, model: nn.Module, x: torch.Tensor, path: Path) -> None:
    opts = KIND_OPTIONS[kind]
    in_name = MODELS[name][1]
    model = copy.deepcopy(model)  # tracing in training mode updates BN buffers: never touch the original
    if not opts["dynamo"]:
        torch.onnx.export(
            model,
            (x,),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=[in_name],
            output_names=["y"],
            dynamic_axes={in_name: {0: "batch"}, "y": {0: "batch"}},
            do_constant_folding=opts["do_constant_folding"],
            training=getattr(torch.onnx.TrainingMode, opts["training"]),
        )
    else:
        batch = torch.export.Dim("batch")
        torch.onnx.export(
            model.eval(),
            (x,),
            str(path),
            dynamo=True,
            external_data=False,
            opset_version=OPSET,
            input_names=[in_name],
            output_names=["y"],
            dynamic_shapes={in_name: {0: batch}},
            optimize=opts["optimize"],
        )


def ort_check(name: str, kind: str, model: nn.Module, path: Path) -> tuple[bool, float]:
    x = example_input(name, CHECK_BATCH, seed=model_seed(name) + 99)
    ref_model = copy.deepcopy(model)
    if KIND_OPTIONS[kind]["training"] == "TRAINING":
        ref_model.train()  # BN uses batch statistics, like BatchNormalization(training_mode=1)
    else:
        ref_model.eval()
    with torch.no_grad():
        ref = ref_model(x).numpy()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    ok = out.shape == ref.shape and bool(np.allclose(out, ref, atol=ATOL))
    return ok, float(np.abs(out - ref).max()) if out.shape == ref.shape else float("inf")


# ----------------------------------------------------------------------------------------------
# What the exporter did (for README.md)
# ----------------------------------------------------------------------------------------------
def onnx_summary(path: Path) -> dict:
    m = onnx.load(str(path))
    g = m.graph
    ops = collections.Counter()

    def walk(graph):
        for n in graph.node:
            ops[n.op_type] += 1
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
                elif a.type == onnx.AttributeProto.GRAPHS:
                    for sg in a.graphs:
                        walk(sg)

    walk(g)
    inits = [(i.name, list(i.dims)) for i in g.initializer]
    const_elems = 0
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.type == onnx.AttributeProto.TENSOR:
                    const_elems += int(np.prod(a.t.dims)) if a.t.dims else 1

    def dims(vi):
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]

    bn_training = [
        n.name for n in g.node if n.op_type == "BatchNormalization"
        and any(a.name == "training_mode" and a.i == 1 for a in n.attribute)
    ]
    return {
        "ops": dict(sorted(ops.items())),
        "bn": ops.get("BatchNormalization", 0),
        "bn_training_mode": len(bn_training),
        "initializers": inits,
        "initializer_elements": sum(int(np.prod(d)) if d else 1 for _, d in inits),
        "constant_node_elements": const_elems,
        "inputs": {i.name: dims(i) for i in g.input},
        "outputs": {o.name: dims(o) for o in g.output},
        "node_names": [n.name for n in g.node][:6],
        "functions": [f.name for f in m.functions],
        "opset": {o.domain or "ai.onnx": o.version for o in m.opset_import},
        "ir_version": m.ir_version,
        "size": path.stat().st_size,
    }


def fmt_inits(inits, limit=40):
    s = ", ".join(f"`{n}`{tuple(d)}" for n, d in inits[:limit])
    if len(inits) > limit:
        s += f", … (+{len(inits) - limit} more)"
    return s


def write_readme(out: Path, results: list[dict], failures: list[tuple[str, str, str]]) -> None:
    v = versions()
    lines = [
        "# Real-exporter ONNX fixtures (PyTorch)",
        "",
        "Generated by `scripts/export_torch.py` (do not edit by hand). Exact command, from the repo root:",
        "",
        "```",
        "python3 -m venv /work/venvs/torch",
        "/work/venvs/torch/bin/pip install -r scripts/requirements-torch.txt",
        "/work/venvs/torch/bin/python scripts/export_torch.py",
        "```",
        "",
        f"Versions: torch {v['torch']}, onnx {v['onnx']}, onnxscript {v['onnxscript']}, "
        f"onnxruntime {v['onnxruntime']}; opset {OPSET}; batch dim dynamic (`batch`); "
        f"example input batch {EXPORT_BATCH}, onnxruntime check at batch {CHECK_BATCH} (atol {ATOL}).",
        "",
        "Each `<model>__<kind>.onnx` has a `<model>__<kind>.json` beside it with what *torch* reports "
        "(parameters, trainable, buffers, BN running stats, leaf modules, state_dict; `tied_to` marks a "
        "state_dict entry that shares storage with an earlier one) and `ort_matches_torch`. "
        "All weights are inside the .onnx (no external data).",
        "",
        "Export kinds:",
        "",
        "- `legacy_fold`: `torch.onnx.export(model.eval(), ..., dynamo=False, do_constant_folding=True)`",
        "- `legacy_nofold`: `dynamo=False, do_constant_folding=False`",
        "- `legacy_training`: `dynamo=False, training=TrainingMode.TRAINING, do_constant_folding=False` (BN models only)",
        "- `dynamo`: `dynamo=True, external_data=False` (optimize=True)",
        "- `dynamo_noopt`: `dynamo=True, external_data=False, optimize=False`",
        "",
        "## Files",
        "",
        "| file | torch params | BN nodes | initializers (elements) | ops | ORT==torch |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for r in results:
        s = r["summary"]
        ops = ", ".join(f"{k}×{c}" for k, c in s["ops"].items())
        bn = f"{s['bn']}" + (f" (training_mode=1: {s['bn_training_mode']})" if s["bn_training_mode"] else "")
        lines.append(
            f"| `{r['file']}` | {r['parameters']} | {bn} | {len(s['initializers'])} ({s['initializer_elements']}) "
            f"| {ops} | {r['ort']} |"
        )
    lines += ["", "## What the exporter did, per file", ""]
    for r in results:
        lines.append(f"- `{r['file']}`: {r['note']}")
    lines += ["", "## Initializer names, one file per kind (and the tied / recurrent models)", ""]
    shown = set()
    for r in results:
        if r["kind"] not in shown or r["model"] in ("tied_lm", "lstm"):
            shown.add(r["kind"])
            s = r["summary"]
            lines.append(f"- `{r['file']}` (first nodes: {', '.join('`%s`' % n for n in s['node_names'])}): "
                         f"{fmt_inits(s['initializers'])}")
    if failures:
        lines += ["", "See FAILURES.md for export kinds that failed."]
    (out / "README.md").write_text("\n".join(lines) + "\n")


def describe(name: str, kind: str, model: nn.Module, s: dict) -> str:
    """One human line on what the exporter did with this model."""
    inits = {n: d for n, d in s["initializers"]}
    bits = []
    n_bn_torch = sum(1 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    if n_bn_torch:
        if s["bn"] == 0:
            conv_inits = [n for n in inits if "conv" in n.lower() or n.startswith("onnx::Conv")
                          or "downsample" in n or "features" in n]
            bits.append(f"all {n_bn_torch} BN folded into the preceding Conv (no BatchNormalization node, "
                        f"no running_mean/var initializers)")
            if name == "seed_cnn":
                c = [f"`{n}`{tuple(d)}" for n, d in s["initializers"] if len(d) in (1, 4) and d[0] == 32]
                bits.append("conv0 now: " + ", ".join(c))
        else:
            stats = [n for n in inits if n.endswith("running_mean") or n.endswith("running_var")]
            bits.append(f"{s['bn']}/{n_bn_torch} BN kept as BatchNormalization"
                        + (f" ({s['bn_training_mode']} with training_mode=1)" if s["bn_training_mode"] else "")
                        + f"; {len(stats)} initializers named *.running_mean/var")
    if name == "tied_lm":
        emb = [n for n, d in s["initializers"] if sorted(d) == [32, 100]]
        shapes = [f"`{n}`{tuple(inits[n])}" for n in emb]
        if len(emb) == 1:
            bits.append(f"tied weight stored ONCE: {shapes[0]} (Gather + MatMul/Gemm"
                        + (" via Transpose" if s["ops"].get("Transpose") else "") + ")")
        else:
            bits.append(f"tied weight stored {len(emb)} times: {', '.join(shapes)}")
    if name in ("lstm", "gru"):
        rnn = "LSTM" if name == "lstm" else "GRU"
        if s["ops"].get(rnn):
            bits.append(f"{s['ops'][rnn]} ONNX `{rnn}` node(s)")
        else:
            loops = {k: c for k, c in s["ops"].items() if k in ("Loop", "Scan")}
            bits.append(f"no ONNX `{rnn}` node: unrolled/decomposed ({loops or 'plain ops'})")
        big = [f"`{n}`{tuple(d)}" for n, d in s["initializers"] if len(d) >= 2 or (len(d) == 1 and d[0] > 16)]
        bits.append("weight initializers: " + ", ".join(big))
    if s["functions"]:
        bits.append(f"local functions: {s['functions']}")
    if s["constant_node_elements"] > 64:
        bits.append(f"{s['constant_node_elements']} elements in Constant nodes")
    bits.append(f"{len(s['initializers'])} initializers / {s['initializer_elements']} elements "
                f"(torch parameters {sum(p.numel() for p in model.parameters())})")
    bits.append(f"input dims {s['inputs']}")
    return "; ".join(bits)


def versions() -> dict:
    return {
        "torch": torch.__version__.split("+")[0],
        "onnx": onnx.__version__,
        "onnxscript": onnxscript.__version__,
        "onnxruntime": ort.__version__,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--kinds", default=",".join(BN_KINDS))
    args = ap.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    warnings.filterwarnings("ignore")
    v = versions()
    kinds_wanted = args.kinds.split(",")

    results, failures = [], []
    for name in args.models.split(","):
        model = build_model(name)
        rep = torch_report(model)
        in_name = MODELS[name][1]
        x = example_input(name, EXPORT_BATCH, seed=model_seed(name) + 1)
        for kind in MODELS[name][4]:
            if kind not in kinds_wanted:
                continue
            stem = f"{name}__{kind}"
            onnx_path, json_path = out / f"{stem}.onnx", out / f"{stem}.json"
            for p in (onnx_path, json_path, out / f"{stem}.onnx.data"):
                p.unlink(missing_ok=True)
            before = set(os.listdir(out))
            print(f"[{stem}] exporting", flush=True)
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    cwd = os.getcwd()
                    os.chdir(tmp)  # any stray artefact of the exporter lands here, not in the repo
                    try:
                        export(name, kind, model, x, onnx_path)
                    finally:
                        os.chdir(cwd)
                extra = set(os.listdir(out)) - before - {onnx_path.name}
                if extra:
                    raise RuntimeError(f"exporter wrote sidecar files: {sorted(extra)}")
                m = onnx.load(str(onnx_path), load_external_data=False)
                if any(i.data_location == onnx.TensorProto.EXTERNAL for i in m.graph.initializer):
                    raise RuntimeError("initializers stored as external data")
                onnx.checker.check_model(m, full_check=True)
                ok, err = ort_check(name, kind, model, onnx_path)
            except Exception as e:  # record and go on
                first = (str(e).strip().splitlines() or [""])[0][:300]
                failures.append((stem, type(e).__name__, first))
                print(f"[{stem}] FAILED: {type(e).__name__}: {first}", flush=True)
                for p in (onnx_path, json_path, out / f"{stem}.onnx.data"):
                    p.unlink(missing_ok=True)
                continue
            opts = KIND_OPTIONS[kind]
            doc = {
                "model": name,
                "export_kind": kind,
                "exporter": {
                    "torch": v["torch"],
                    "onnx": v["onnx"],
                    "onnxscript": v["onnxscript"],
                    "onnxruntime": v["onnxruntime"],
                    "dynamo": opts["dynamo"],
                    "do_constant_folding": opts["do_constant_folding"],
                    "training": opts["training"],
                    "opset": OPSET,
                    "optimize": opts["optimize"],
                },
                "input_shapes": {in_name: list(x.shape)},
                "input_dtypes": {in_name: str(x.dtype).replace("torch.", "")},
                "dynamic_axes": {in_name: {"0": "batch"}},
                **rep,
                "ort_matches_torch": ok,
                "ort_max_abs_diff": round(err, 9),
            }
            json_path.write_text(json.dumps(doc, sort_keys=True, indent=1) + "\n")
            s = onnx_summary(onnx_path)
            note = describe(name, kind, model, s)
            results.append({"file": onnx_path.name, "model": name, "kind": kind, "summary": s, "note": note,
                            "parameters": rep["parameters"], "ort": ok})
            print(f"[{stem}] ok ort={ok} maxdiff={err:.2e} bn={s['bn']} inits={len(s['initializers'])} "
                  f"size={s['size']}", flush=True)

    write_readme(out, results, failures)
    fpath = out / "FAILURES.md"
    if failures:
        lines = ["# Export failures", "", "Written by scripts/export_torch.py.", "",
                 "| file | exception | first line |", "| --- | --- | --- |"]
        lines += [f"| `{s}` | `{t}` | {msg.replace('|', '/')} |" for s, t, msg in failures]
        fpath.write_text("\n".join(lines) + "\n")
    else:
        fpath.write_text("# Export failures\n\nNone: every export kind listed in README.md succeeded.\n")
    bad = [r["file"] for r in results if not r["ort"]]
    print(f"done: {len(results)} exported, {len(failures)} failed, ORT mismatches: {bad}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
