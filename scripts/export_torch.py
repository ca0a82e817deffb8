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
import re
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import onnx.version_converter
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


NAMING_NOTES = """\
## Naming patterns seen with these versions (what an auditor has to cope with)

- **legacy, no folding** (`legacy_nofold`, `legacy_training`): every initializer keeps its torch state_dict name
  and value (`conv0.weight`, `bn0.running_mean`, `layer2.0.downsample.1.running_var`, `lstm.weight_ih_l0`);
  `num_batches_tracked` is never exported (in no kind). Exception: with `training=TRAINING` the tracing forward pass
  runs in train mode, so the exported `*.running_mean`/`*.running_var` hold the values after ONE momentum update with
  the example batch (same names and shapes, different values from the model before export); BN nodes get
  `training_mode=1` and 3 outputs (Y + running mean/var, the latter two unused). Node names are scope paths: `/conv0/Conv`, `/bn0/BatchNormalization`,
  `/layer1/layer1.0/conv1/Conv`, `/features/features.1/conv/conv.0/conv.0.0/Conv`; plus bare `Constant_11`.
  Tensors between nodes: `/conv0/Conv_output_0`. LSTM/GRU weights are re-ordered at run time by Slice/Concat/Unsqueeze
  nodes feeding the ONNX `LSTM`/`GRU` node.
- **legacy with folding** (`legacy_fold`): BN folded into Conv; the folded weight and bias get anonymous names
  `onnx::Conv_<n>` (the conv that had no bias gains one), while untouched tensors keep torch names (`fc.weight`).
  Folded LSTM/GRU weights become `onnx::LSTM_<n>`/`onnx::GRU_<n>` with shapes (1, 4H, in), (1, 4H, H), (1, 8H)
  (gates re-ordered: LSTM i,f,g,o -> i,o,f,c, GRU r,z,n -> z,r,h; the two biases concatenated). A weight used transposed (tied `lm_head`)
  is folded into a separate transposed copy `onnx::MatMul_<n>`.
- **dynamo, optimize=True** (`dynamo`): BN folded into Conv, but the folded tensors KEEP the torch name of the
  conv weight (`conv0.weight` holds conv0.weight × BN scale, not the torch value) and a new bias is named
  `<conv weight name>_bias` (`layer1.0.conv1.weight_bias`) or keeps `conv0.bias` when the conv had one.
  Other folded or helper tensors are `val_<n>` (LSTM weights `val_43`, transposed tied weight `val_2`,
  int64 shape constants `val_16`), Clip bounds `min_val_cast`/`max_val_cast`. Node names: `node_<Op>_<n>`,
  `node_<aten op>` (`node_linear`, `node_relu`), sometimes `n4`. Tensors: aten-ish names (`relu_1`, `hardtanh`).
- **dynamo, optimize=False** (`dynamo_noopt`): torch names and values for every weight and BN statistic,
  BN as `node__native_batch_norm_legit_no_training__0`; convs without bias get a run-time zero bias
  (Constant + Expand + CastLike); many Constant/Shape nodes.
- The tied embedding is named `lm_head.weight` by the dynamo exporter and `embed.weight` by the legacy one.
"""


def write_readme(out: Path, results: list[dict], failures: list, notes: list) -> None:
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
        f"Versions: torch {v['torch']} (CPU), onnx {v['onnx']}, onnxscript {v['onnxscript']}, "
        f"onnxruntime {v['onnxruntime']}; opset {OPSET} requested; batch dim dynamic (`batch`); "
        f"example input batch {EXPORT_BATCH}, onnxruntime check at batch {CHECK_BATCH} (atol {ATOL}).",
        "",
        "Each `<model>__<kind>.onnx` has a `<model>__<kind>.json` beside it with what *torch* reports "
        "(parameters, trainable, buffers, BN running stats, leaf modules, state_dict; `tied_to` marks a "
        "state_dict entry that shares storage with an earlier one; a module's own `parameters` count the tied "
        "weight in both `embed` and `lm_head`) and `ort_matches_torch`. "
        "All weights are inside the .onnx (no external data file). Every bias and BN statistic is random "
        "non-zero, so no exporter could drop one as trivial.",
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
        "| file | opset | torch params | BN nodes | initializers (elements) | ops | ORT==torch |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in results:
        s = r["summary"]
        ops = ", ".join(f"{k}×{c}" for k, c in s["ops"].items())
        bn = f"{s['bn']}" + (f" (training_mode=1: {s['bn_training_mode']})" if s["bn_training_mode"] else "")
        lines.append(
            f"| `{r['file']}` | {s['opset'].get('ai.onnx')} | {r['parameters']} | {bn} "
            f"| {len(s['initializers'])} ({s['initializer_elements']}) | {ops} | {r['ort']} |"
        )
    lines += ["", "## What the exporter did, per file", "",
              "Initializers are compared by value with the torch state_dict: *torch* = same name and value, "
              "*renamed* = a torch tensor's value under another name, *transposed* = a torch tensor transposed, "
              "*derived* = new float values (folded BN, re-ordered gates), *helper* = int64 / scalar constants.", ""]
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
    lines += ["", NAMING_NOTES.rstrip()]
    if failures or notes:
        lines += ["", "See FAILURES.md for export kinds that failed or did not honour the opset."]
    (out / "README.md").write_text("\n".join(lines) + "\n")


def classify_initializers(path: Path, model: nn.Module) -> dict:
    """Compare every initializer with the torch state_dict by value."""
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    m = onnx.load(str(path))
    out = {"torch": [], "renamed": [], "transposed": [], "derived": [], "helper": [], "torch_name_new_value": []}
    for init in m.graph.initializer:
        a = onnx.numpy_helper.to_array(init)
        n = init.name
        if n in sd and sd[n].shape == a.shape and np.array_equal(sd[n], a):
            out["torch"].append(n)
            continue
        if any(t.shape == a.shape and np.array_equal(t, a) for t in sd.values()):
            out["renamed"].append(n)
            continue
        if a.ndim == 2 and any(t.ndim == 2 and t.T.shape == a.shape and np.array_equal(t.T, a) for t in sd.values()):
            out["transposed"].append(n)
            continue
        if a.dtype.kind != "f" or a.size <= 1:
            out["helper"].append(n)
            continue
        out["derived"].append(n)
        if n in sd:
            out["torch_name_new_value"].append(n)
    return out


def describe(name: str, kind: str, model: nn.Module, s: dict, path: Path) -> str:
    """One human line on what the exporter did with this model (checked against the torch values)."""
    inits = {n: d for n, d in s["initializers"]}
    cls = classify_initializers(path, model)
    bits = []
    n_bn_torch = sum(1 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    if n_bn_torch:
        if s["bn"] == 0:
            bits.append(f"all {n_bn_torch} BN folded into the preceding Conv (0 BatchNormalization nodes, "
                        f"no running_mean/var initializers)")
            if name == "seed_cnn":
                c = [f"`{n}`{tuple(d)}" for n, d in s["initializers"] if len(d) in (1, 4) and d[0] == 32]
                bits.append("conv0 is now " + ", ".join(c))
        else:
            stats = [n for n in inits if n.endswith("running_mean") or n.endswith("running_var")]
            bits.append(f"{s['bn']}/{n_bn_torch} BN kept as BatchNormalization"
                        + (f" ({s['bn_training_mode']} with training_mode=1 and 3 outputs: Y plus unused "
                           f"running_mean/var outputs)" if s["bn_training_mode"] else "")
                        + f"; {len(stats)} running_mean/var initializers under torch names")
    if name == "tied_lm":
        emb = [n for n, d in s["initializers"] if sorted(d) == [32, 100]]
        shapes = [f"`{n}`{tuple(inits[n])}" for n in emb]
        if len(emb) == 1:
            bits.append(f"tied weight stored ONCE as {shapes[0]}, used by Gather and, through a Transpose node, "
                        f"by MatMul")
        else:
            bits.append(f"tied weight stored {len(emb)} times: {', '.join(shapes)} "
                        f"(the second a transposed copy feeding MatMul)")
    if name in ("lstm", "gru"):
        rnn = "LSTM" if name == "lstm" else "GRU"
        if s["ops"].get(rnn):
            bits.append(f"{s['ops'][rnn]} ONNX `{rnn}` node (not unrolled)")
        else:
            loops = {k: c for k, c in s["ops"].items() if k in ("Loop", "Scan")}
            bits.append(f"no ONNX `{rnn}` node: unrolled/decomposed ({loops or 'plain ops'})")
        big = [f"`{n}`{tuple(d)}" for n, d in s["initializers"] if len(d) >= 2 or (len(d) == 1 and d[0] > 16)]
        bits.append("weight initializers: " + ", ".join(big))
    counts = ", ".join(f"{k} {len(v)}" for k, v in cls.items() if v and k != "torch_name_new_value")
    bits.append(f"{len(s['initializers'])} initializers / {s['initializer_elements']} elements "
                f"(torch parameters {sum(p.numel() for p in model.parameters())}): {counts}")
    for k in ("renamed", "transposed", "derived", "helper"):
        if cls[k] and k != "torch":
            bits.append(f"{k}: " + ", ".join(f"`{n}`" for n in cls[k][:8]) + (" …" if len(cls[k]) > 8 else ""))
    if cls["torch_name_new_value"]:
        bits.append("torch names holding NEW (folded) values: "
                    + ", ".join(f"`{n}`" for n in cls["torch_name_new_value"][:8])
                    + (" …" if len(cls["torch_name_new_value"]) > 8 else ""))
    if s["functions"]:
        bits.append(f"local functions: {s['functions']}")
    if s["constant_node_elements"]:
        bits.append(f"{s['ops'].get('Constant', 0)} Constant nodes ({s['constant_node_elements']} elements)")
    bits.append(f"input dims {s['inputs']}")
    return "; ".join(bits)


def opset_conversion_error(m: onnx.ModelProto) -> str:
    """Why the exporter's down-conversion to OPSET failed (same onnx C API it falls back to)."""
    try:
        onnx.version_converter.convert_version(m, OPSET)
    except Exception as e:
        msg = (str(e).strip().splitlines() or [""])[0]
        msg = re.sub(r"^\S*\.h:\d+: ", "", msg)  # drop the C++ source path
        return f"{type(e).__name__}: {msg}"[:300]
    return ("the exporter converts BEFORE its optimizer runs, so it failed on the unoptimized graph (same error "
            "as the `_noopt` file); this optimized file itself would now convert")


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

    results, failures, notes = [], [], []
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
                file_opset = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
                if file_opset != OPSET:
                    notes.append((stem, file_opset, opset_conversion_error(m)))
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
                    "opset": OPSET,  # requested
                    "opset_in_file": file_opset,  # dynamo exports at 18 and converts down; may stay 18
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
            note = describe(name, kind, model, s, onnx_path)
            results.append({"file": onnx_path.name, "model": name, "kind": kind, "summary": s, "note": note,
                            "parameters": rep["parameters"], "ort": ok})
            print(f"[{stem}] ok ort={ok} maxdiff={err:.2e} bn={s['bn']} inits={len(s['initializers'])} "
                  f"size={s['size']}", flush=True)

    write_readme(out, results, failures, notes)
    lines = ["# Export failures", "", "Written by scripts/export_torch.py.", ""]
    if failures:
        lines += ["| file | exception | first line |", "| --- | --- | --- |"]
        lines += [f"| `{s}` | `{t}` | {msg.replace('|', '/')} |" for s, t, msg in failures]
    else:
        lines += ["No export raised: every file listed in README.md was written, passed "
                  "`onnx.checker.check_model(full_check=True)` and matches torch in onnxruntime."]
    if notes:
        lines += ["", "## Partial: opset not honoured", "",
                  f"The dynamo exporter builds opset 18 and converts down to the requested {OPSET}; for these files "
                  f"the conversion failed (logged, not raised) and the file was kept at opset 18 "
                  f"(`exporter.opset_in_file` in the JSON):", "",
                  "| file | opset in file | why (onnx.version_converter to 17) |", "| --- | ---: | --- |"]
        lines += [f"| `{s}.onnx` | {o} | {msg.replace('|', '/')} |" for s, o, msg in notes]
    (out / "FAILURES.md").write_text("\n".join(lines) + "\n")
    bad = [r["file"] for r in results if not r["ort"]]
    print(f"done: {len(results)} exported, {len(failures)} failed, ORT mismatches: {bad}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
