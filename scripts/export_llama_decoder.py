#!/usr/bin/env python3
"""A Llama-style decoder from a transformers config, exported by both torch.onnx exporters: the real
~40k-node exports of issue #24's benchmark (BENCHMARKS.md, "Fast at every size").

Random weights, tiny width, enough layers for the node count asked for; no hub access (the model is
built from a LlamaConfig, never downloaded). The files are cached outside the repository, never
committed (the default --out is ~/.cache/onnxaudit-real/llama-decoder):

    python3 -m venv /tmp/venv-torch
    /tmp/venv-torch/bin/pip install -r scripts/requirements-torch.txt
    echo 'torch==2.13.0' > /tmp/torch-constraints.txt      # keep the CPU wheel: transformers must not upgrade it
    /tmp/venv-torch/bin/pip install transformers -c /tmp/torch-constraints.txt
    /tmp/venv-torch/bin/python scripts/export_llama_decoder.py --layers 90

It writes llama_decoder_L<layers>__dynamo.onnx (torch.onnx.export(..., dynamo=True, optimize=False)),
llama_decoder_L<layers>__torchscript.onnx (dynamo=False) and a JSON beside each with what torch says of
the model (parameters, buffers, layers) and the file's node count. With --dry-run it builds the model,
prints torch's figures and exits. An existing file is kept unless --force.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import onnx
import torch

# transformers imports torchvision when it is installed; it is not needed here, and a torchvision built for
# another torch (a shared venv) breaks transformers' import: keep it out.
sys.modules.setdefault("torchvision", None)  # type: ignore[arg-type]
import transformers  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

DEFAULT_OUT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "onnxaudit-real" / "llama-decoder"
OPSET = 18
SEQ = 8


def build(layers: int, hidden: int, heads: int, vocab: int) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=64,
        tie_word_embeddings=False,
        use_cache=False,
        attn_implementation="eager",
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # non-trivial norm weights: an exporter drops nothing for being all ones
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.uniform_(0.5, 1.5)
    return model


class Logits(torch.nn.Module):
    """input_ids -> logits only (no cache, no dict output): the same graph for both exporters. The mask of
    ones keeps transformers off its packed-sequence test (torch.diff, which TorchScript cannot export)."""

    def __init__(self, model: LlamaForCausalLM) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = torch.ones_like(input_ids)
        return self.model(input_ids=input_ids, attention_mask=mask, use_cache=False, return_dict=True).logits


def torch_figures(model: LlamaForCausalLM) -> dict[str, object]:
    params = list(model.parameters())
    return {
        "parameters": sum(p.numel() for p in params),
        "trainable_parameters": sum(p.numel() for p in params if p.requires_grad),
        "buffers": sum(b.numel() for b in model.buffers()),
        "buffer_names": sorted(name for name, _ in model.named_buffers()),
        "state_dict_entries": len(model.state_dict()),
        "layers": model.config.num_hidden_layers,
        "hidden_size": model.config.hidden_size,
    }


def export(model: torch.nn.Module, path: Path, dynamo: bool) -> float:
    ids = torch.zeros((1, SEQ), dtype=torch.int64)
    start = time.perf_counter()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if dynamo:
            program = torch.onnx.export(model, (ids,), dynamo=True, optimize=False, opset_version=OPSET,
                                        input_names=["input_ids"], output_names=["logits"])  # fmt: skip
            assert program is not None
            program.save(str(path))
        else:
            torch.onnx.export(model, (ids,), str(path), dynamo=False, opset_version=OPSET,
                              input_names=["input_ids"], output_names=["logits"])  # fmt: skip
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=90)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=64)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--kinds", default="dynamo,torchscript")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    model = build(args.layers, args.hidden, args.heads, args.vocab)
    figures = torch_figures(model)
    print(json.dumps(figures), flush=True)
    if args.dry_run:
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for kind in args.kinds.split(","):
        path = args.out / f"llama_decoder_L{args.layers}__{kind}.onnx"
        if path.exists() and not args.force:
            print(f"{path}: kept (--force writes it again)")
            continue
        seconds = export(Logits(model), path, dynamo=kind == "dynamo")
        proto = onnx.load(str(path), load_external_data=False)
        record = {
            **figures,
            "exporter": kind,
            "export_seconds": round(seconds, 1),
            "nodes": len(proto.graph.node),
            "initializers": len(proto.graph.initializer),
            "file_bytes": path.stat().st_size,
            "producer": f"{proto.producer_name} {proto.producer_version}",
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                         "onnx": onnx.__version__, "python": sys.version.split()[0]},  # fmt: skip
        }
        path.with_suffix(".json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        print(f"{path}: {record['nodes']:,} nodes, {record['file_bytes'] / 1e6:.1f} MB, {seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
