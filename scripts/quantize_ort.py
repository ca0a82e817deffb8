"""Quantized fixtures made by onnxruntime's own quantization tools from the float fixtures.

Writes models/ort/<source>__<kind>.onnx and a .json beside each with what the source's framework
recorded and the tool that made the file. Quantization changes dtypes, not element counts, so the
quantized file must count the same weights as its float source.

Run (the torch venv has onnx_ir, which MatMulNBits quantization needs):
    /work/venvs/torch/bin/python scripts/quantize_ort.py [static_more]
Versions: see scripts/requirements-torch.txt (onnxruntime 1.32.0, onnx 1.23.2, onnx-ir 1.1.0).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "models" / "ort"


class RandomReader(CalibrationDataReader):
    """A few deterministic random batches for calibration (values do not matter for counts)."""

    def __init__(self, model: Path, batches: int = 4) -> None:
        session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        self.feeds = []
        for _ in range(batches):
            feed = {}
            for inp in session.get_inputs():
                shape = [d if isinstance(d, int) else 1 for d in inp.shape]
                feed[inp.name] = rng.standard_normal(shape).astype(np.float32)
            self.feeds.append(feed)
        self.index = 0

    def get_next(self):  # noqa: ANN201 - onnxruntime's interface
        if self.index >= len(self.feeds):
            return None
        self.index += 1
        return self.feeds[self.index - 1]


def _record(source: Path, target: Path, kind: str, api: str) -> None:
    meta = json.loads(source.with_suffix(".json").read_text())
    model = onnx.load(str(target))
    ops = sorted({n.op_type for n in model.graph.node})
    record = {
        "source": f"{source.parent.name}/{source.name}",
        "kind": kind,
        "tool": {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__, "api": api},
        "source_recorded": {k: meta[k] for k in ("parameters", "running_stats", "total", "trainable") if k in meta},
        "ops": ops,
    }
    target.with_suffix(".json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"{target.name}: {', '.join(ops)}")


def dynamic_per_channel() -> None:
    """Per-channel dynamic quantization: the weight scales become vectors multiplied with the
    run-time input scale (Mul(x_scale, w_scale)) before rescaling the integer product."""
    source = ROOT / "models" / "torch" / "resnet_tiny__legacy_nofold.onnx"
    target = OUT / f"{source.stem}__dynamic_per_channel.onnx"
    quantize_dynamic(
        str(source), str(target), per_channel=True, weight_type=QuantType.QInt8,
        op_types_to_quantize=["Conv", "MatMul", "Gemm"],
    )  # fmt: skip
    api = "quantize_dynamic(per_channel=True, weight_type=QInt8, op_types_to_quantize=[Conv, MatMul, Gemm])"
    _record(source, target, "dynamic_per_channel", api)


def transformers_quantized() -> None:
    """The fused transformers of models/ortfused quantized by onnxruntime: QEmbedLayerNormalization,
    QAttention, a quantized embedding table read by Gather then DequantizeLinear, GatherBlockQuantized."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    fused = ROOT / "models" / "ortfused"
    for name in ("bert_tiny__ort_fused", "gpt2_tiny__ort_fused"):
        source, target = fused / f"{name}.onnx", OUT / f"{name}__dynamic_per_channel.onnx"
        extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}  # the optimizer's contrib ops have no inferred types
        quantize_dynamic(str(source), str(target), per_channel=True, weight_type=QuantType.QInt8, extra_options=extra)
        _record(source, target, "dynamic_per_channel", "quantize_dynamic(per_channel=True, weight_type=QInt8)")
    source, target = fused / "llama_tiny__ort_fused.onnx", OUT / "llama_tiny__ort_fused__matmul_nbits_gather.onnx"
    quantizer = MatMulNBitsQuantizer(
        onnx.load(str(source)), block_size=16, is_symmetric=False,
        op_types_to_quantize=("MatMul", "Gather"), quant_axes=(("MatMul", 0), ("Gather", 1)),
    )  # fmt: skip
    quantizer.process()
    quantizer.model.save_model_to_file(str(target), use_external_data_format=False)
    api = "MatMulNBitsQuantizer(block_size=16, asymmetric, op_types_to_quantize=(MatMul, Gather))"
    _record(source, target, "matmul_nbits_gather", api)


def static_more() -> None:
    """Static quantization of a Linear on 3-D input (MatMul + Add), whose bias becomes an integer
    `<bias>_quantized` read by DequantizeLinear then Add (QDQ) or by QLinearAdd (QOperator), and of a
    ResNet whose BNs torch.onnx folded into its convs (`onnx::Conv_N` renamed `onnx::Conv_N_quantized`)."""
    sources = (
        ROOT / "models" / "torchzoo" / "rescaled_norm__legacy.onnx",
        ROOT / "models" / "torch" / "resnet_tiny__legacy_fold.onnx",
    )
    for source in sources:
        _static(source, per_channel=False)


def _static(source: Path, per_channel: bool) -> None:
    """quantize_static in both formats: `<source>__qdq_static.onnx` and `<source>__qoperator_static.onnx`."""
    for kind, fmt in (("qdq_static", QuantFormat.QDQ), ("qoperator_static", QuantFormat.QOperator)):
        target = OUT / f"{source.stem}__{kind}.onnx"
        quantize_static(
            str(source), str(target), RandomReader(source), quant_format=fmt, per_channel=per_channel,
            weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
        )  # fmt: skip
        api = f"quantize_static(quant_format={fmt.name}{', per_channel=True' if per_channel else ''})"
        _record(source, target, kind, api)


def main() -> None:
    if sys.argv[1:] == ["static_more"]:  # one group alone: the others' files stay as they are
        static_more()
        return
    OUT.mkdir(parents=True, exist_ok=True)
    torch_dir = ROOT / "models" / "torch"
    keras_dir = ROOT / "models" / "keras"
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("resnet_tiny__legacy_nofold", "mobilenetv2_tiny__legacy_nofold"):
            source = torch_dir / f"{name}.onnx"
            _static(source, per_channel=True)
            target = OUT / f"{name}__dynamic.onnx"
            quantize_dynamic(str(source), str(target), weight_type=QuantType.QUInt8, op_types_to_quantize=["Conv"])
            _record(source, target, "dynamic", "quantize_dynamic(weight_type=QUInt8, op_types_to_quantize=[Conv])")
        for source in (torch_dir / "tied_lm__legacy_nofold.onnx", keras_dir / "seed_geron_code__tf2onnx_op17.onnx"):
            target = OUT / f"{source.stem}__matmul_nbits.onnx"
            from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

            quantizer = MatMulNBitsQuantizer(onnx.load(str(source)), block_size=32, is_symmetric=False)
            quantizer.process()
            scratch = Path(tmp) / target.name
            quantizer.model.save_model_to_file(str(scratch), use_external_data_format=False)
            shutil.copy(scratch, target)
            _record(source, target, "matmul_nbits", "MatMulNBitsQuantizer(block_size=32, bits=4, asymmetric)")
            target = OUT / f"{source.stem}__matmul_dynamic.onnx"
            quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
            api = "quantize_dynamic(weight_type=QInt8, op_types_to_quantize=[MatMul])"
            _record(source, target, "matmul_dynamic", api)
    dynamic_per_channel()
    transformers_quantized()
    static_more()


if __name__ == "__main__":
    main()
