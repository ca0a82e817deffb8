"""Fixtures with onnxruntime contrib ops (com.microsoft) made by the real tools, not by hand.

A tiny Hugging Face BERT, GPT-2 and Llama are exported with torch.onnx (TorchScript path, opset 14), then fused
by onnxruntime's transformer optimizer (`onnxruntime.transformers.optimizer.optimize_model`, model_type
'bert' / 'gpt2'), which writes EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu,
FastGelu, ... Writes models/ortfused/<model>__<stage>.onnx and a .json beside each with what PyTorch
itself reported (sum(p.numel()) over parameters, buffers) and the tools that made the file.

Run (transformers is only needed here, never by the tests):
    /work/venvs/torch/bin/pip install -r scripts/requirements-contrib.txt
    /work/venvs/torch/bin/python scripts/export_contrib.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import onnx
import onnxruntime
import torch
import transformers
from onnxruntime.transformers.optimizer import optimize_model

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "models" / "ortfused"
HIDDEN, LAYERS, HEADS, FFN, VOCAB, POSITIONS = 32, 2, 2, 64, 100, 32


def _bert() -> torch.nn.Module:
    config = transformers.BertConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=FFN,
        max_position_embeddings=POSITIONS,
        attn_implementation="eager",
    )
    return transformers.BertModel(config, add_pooling_layer=False)


def _gpt2() -> torch.nn.Module:
    config = transformers.GPT2Config(
        vocab_size=VOCAB,
        n_embd=HIDDEN,
        n_layer=LAYERS,
        n_head=HEADS,
        n_positions=POSITIONS,
        attn_implementation="eager",
        use_cache=False,
    )
    return transformers.GPT2Model(config)


def _llama() -> torch.nn.Module:
    """RMSNorm (SimplifiedLayerNormalization, SkipSimplifiedLayerNormalization after fusion), grouped
    key/value heads and rotary embeddings (inv_freq, a non-persistent buffer)."""
    config = transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=FFN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=HEADS // 2,
        max_position_embeddings=POSITIONS,
        attn_implementation="eager",
        use_cache=False,
    )
    return transformers.LlamaModel(config)


class _Wrapper(torch.nn.Module):
    """Plain tensors in and out, so the TorchScript exporter sees no ModelOutput."""

    def __init__(self, inner: torch.nn.Module, bert: bool) -> None:
        super().__init__()
        self.inner, self.bert = inner, bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is None:
            return self.inner(input_ids)[0]
        if self.bert:
            token_type_ids = torch.zeros_like(input_ids)
            return self.inner(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]
        return self.inner(input_ids, attention_mask=attention_mask)[0]


def _randomize(model: torch.nn.Module) -> None:
    """Non-trivial biases and norm parameters: exporters and fusers drop zeros and ones."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=generator) * 0.1 + 0.05)


def _export(name: str, model: torch.nn.Module, kind: str, dynamo: bool = False, mask: bool = True) -> None:
    model.eval()
    _randomize(model)
    opset = 18 if dynamo else 14
    ids = torch.randint(0, VOCAB, (1, 8))
    attention = torch.ones(1, 8, dtype=torch.int64)
    parameters = sum(p.numel() for p in model.parameters())
    buffers = {n: b.numel() for n, b in model.named_buffers()}
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / f"{name}.onnx"
        names = ["input_ids", "attention_mask"] if mask else ["input_ids"]
        torch.onnx.export(
            _Wrapper(model, kind == "bert"),
            (ids, attention) if mask else (ids,),
            str(raw),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={name: {0: "batch", 1: "seq"} for name in names},
            opset_version=opset,
            dynamo=dynamo,
            do_constant_folding=True,
        )
        fused = optimize_model(str(raw), model_type=kind, num_heads=HEADS, hidden_size=HIDDEN, opt_level=0)
        target = OUT / f"{name}__ort_fused.onnx"
        fused.save_model_to_file(str(target))
    saved = onnx.load(str(target))
    ops = sorted({f"{n.domain or 'ai.onnx'}:{n.op_type}" for n in saved.graph.node})
    record = {
        "model": name,
        "config": {
            "hidden": HIDDEN,
            "layers": LAYERS,
            "heads": HEADS,
            "ffn": FFN,
            "vocab": VOCAB,
            "positions": POSITIONS,
        },
        "parameters": parameters,
        "buffers": buffers,
        "fusion": fused.get_fused_operator_statistics(),
        "ops": ops,
        "tool": {
            "torch": torch.__version__.split("+")[0],
            "transformers": transformers.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "export": f"torch.onnx.export(dynamo={dynamo}, opset_version={opset}, do_constant_folding=True)",
            "optimizer": f"optimize_model(model_type={kind!r}, num_heads={HEADS}, hidden_size={HIDDEN}, opt_level=0)",
        },
    }
    target.with_suffix(".json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"{target.name}: {parameters} parameters; {', '.join(ops)}")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    _export("bert_tiny", _bert(), "bert")
    # transformers' causal mask uses vmap, which only the dynamo exporter can trace
    _export("gpt2_tiny", _gpt2(), "gpt2", dynamo=True)
    _export("llama_tiny", _llama(), "gpt2", dynamo=True, mask=False)


if __name__ == "__main__":
    main()
