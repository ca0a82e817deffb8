"""A YOLOv8-shaped detector exported by Ultralytics' own exporter (`model.export(format="onnx")`), with
what torch counted before the export beside it.

Ultralytics fuses every Conv block's BatchNorm into its conv before exporting (`model.fuse()`), so the
file holds conv weights with a bias (`model.0.conv.bias`, the BN's shift) and no BatchNormalization;
the model's metadata names Ultralytics as its author. The network is YOLOv8's at a small width (random
weights and BN statistics, 2 classes, 64x64 input) so the fixture stays small.

Writes models/ultralytics/yolov8_tiny.onnx and a .json with torch's figures before the fusion:
sum(p.numel()) over parameters and the BN running statistics, and after it.

Run: python scripts/export_ultralytics.py   (in a venv with scripts/requirements-ultralytics.txt)
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import onnx
import torch
import ultralytics
from ultralytics.nn.tasks import DetectionModel

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "models" / "ultralytics"
# yolov8.yaml's network at width 1/16 and a third of its depth
CONFIG = {**ultralytics.utils.YAML.load(Path(ultralytics.__file__).parent / "cfg/models/v8/yolov8.yaml")}
CONFIG.pop("scales", None)
CONFIG.update(nc=2, depth_multiple=0.33, width_multiple=0.0625, max_channels=1024)


def _counts(model: torch.nn.Module) -> dict[str, int]:
    stats = ("running_mean", "running_var")
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "running_stats": sum(b.numel() for n, b in model.named_buffers() if n.rsplit(".", 1)[-1] in stats),
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net = DetectionModel(CONFIG, verbose=False)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # non-trivial BN statistics and shifts (a fusion of defaults would be an identity)
        for name, buffer in net.named_buffers():
            if name.endswith(("running_mean", "running_var")):
                buffer.copy_(torch.rand(buffer.shape, generator=generator) * 0.5 + 0.5)
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.01)
    before = _counts(net)
    work = Path(tempfile.mkdtemp())
    checkpoint = work / "yolov8_tiny.pt"
    torch.save({"model": net, "train_args": {}}, checkpoint)
    exported = Path(ultralytics.YOLO(str(checkpoint)).export(format="onnx", imgsz=64, simplify=False, opset=17))
    target = OUT / "yolov8_tiny.onnx"
    shutil.copyfile(exported, target)
    after = _counts(DetectionModel(CONFIG, verbose=False).fuse(verbose=False))
    record = {
        **before,
        "fused": after,
        "exporter": {
            "ultralytics": ultralytics.__version__, "torch": torch.__version__.split("+")[0],
            "onnx": onnx.__version__, "call": 'YOLO(pt).export(format="onnx", imgsz=64, simplify=False, opset=17)',
        },
    }  # fmt: skip
    target.with_suffix(".json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"{target.name}: {before} before the fusion, {after} after")


if __name__ == "__main__":
    main()
