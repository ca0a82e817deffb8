"""A scoring corpus for issue #18's PyTorch classes: a torch.nn zoo (one module per class of
exporter path: affine-free norms, named tables read by index or a bare Mul/Add, parametrizations,
shared modules, weights made by ConstantOfShape, a Snake alpha beside its reciprocal), a dozen timm
models at tiny widths and Hugging Face models built from configs (no hub), each exported by both
torch.onnx exporters (dynamo=True, dynamo=False with and without constant folding).

Writes <out>/<model>__<kind>.onnx and <model>__<kind>.counts.json beside each: what torch itself
reports, in the shape `verify --torch-counts` reads (parameters, trainable = requires_grad,
running_stats = BN running_mean/var, state_buffers = every persistent buffer but num_batches_tracked,
modules). The corpus is not committed (scripts/score_corpus.py reads it from the cache).

Run: /tmp/venv-torch/bin/python scripts/export_torch_corpus.py [--out DIR] [--only NAME ...]
(torch 2.13.0+cpu, timm 1.0.31, transformers 5.25.0, onnxscript 0.7.2; pin torch with a constraints file)
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import traceback
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import torch
from export_torch_zoo import Snake  # class 7: the zoo fixtures' Snake (alpha's reciprocal folded beside it)
from torch import nn
from torch.nn.utils import parametrizations

DEFAULT_OUT = Path.home() / ".cache" / "onnxaudit-corpus" / "torch"
STATS = ("running_mean", "running_var")


# ---------------------------------------------------------------------------------------------
# torch.nn zoo, one module per class of issue #18
# ---------------------------------------------------------------------------------------------
class NormsNoAffine(nn.Module):
    """Class 2: norms whose exported scale/shift the exporter writes (ones and zeros)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8, affine=False)
        self.gn = nn.GroupNorm(2, 8, affine=False)
        self.fc = nn.Linear(8, 16)
        self.ln = nn.LayerNorm(16, elementwise_affine=False)
        self.ln_nobias = nn.LayerNorm(16, bias=False)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.gn(self.bn(self.conv(x))).mean((2, 3))
        return self.head(self.ln_nobias(self.ln(self.fc(h))))


class InstanceNoAffine(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.inorm = nn.InstanceNorm2d(8)
        self.conv2 = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.inorm(self.conv(x)))


class ZeroBiasAttention(nn.Module):
    """Class 2: T5 cross attention adds a zeros position bias it makes itself."""

    def __init__(self) -> None:
        super().__init__()
        self.q, self.k, self.v = nn.Linear(8, 8, bias=False), nn.Linear(8, 8, bias=False), nn.Linear(8, 8, bias=False)
        self.o = nn.Linear(8, 8, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.q(x), self.k(x), self.v(x)
        scores = q @ k.transpose(-1, -2)
        scores = scores + torch.zeros(1, 1, x.shape[1], x.shape[1])
        return self.o(scores.softmax(-1) @ v)


class Tables(nn.Module):
    """Class 4: ViT/BERT tables read by index or by a bare Add/Mul."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 16, 4, stride=4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 16))
        self.pos_embed = nn.Parameter(torch.zeros(1, 5, 16))
        self.token_type = nn.Embedding(2, 16)
        self.gamma = nn.Parameter(torch.ones(16))
        self.rel_bias = nn.Parameter(torch.zeros(2, 5, 5))
        self.qkv = nn.Linear(16, 48)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), t], 1) + self.pos_embed
        t = t + self.token_type.weight[0]
        q, k, v = self.qkv(t).reshape(x.shape[0], 5, 3, 2, 8).permute(2, 0, 3, 1, 4)
        a = (q @ k.transpose(-1, -2) + self.rel_bias).softmax(-1) @ v
        t = t + self.gamma * a.transpose(1, 2).reshape(x.shape[0], 5, 16)
        return self.head(t[:, 0])


class RelativeIndexBias(nn.Module):
    """Class 4: a Swin relative position bias table gathered by a constant index buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.zeros(9, 2))
        coords = torch.stack(torch.meshgrid(torch.arange(2), torch.arange(2), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + 1
        self.register_buffer("index", (rel[..., 0] * 3 + rel[..., 1]), persistent=False)
        self.qkv = nn.Linear(8, 24)
        self.proj = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).reshape(x.shape[0], 4, 3, 2, 4).permute(2, 0, 3, 1, 4)
        bias = self.table[self.index.view(-1)].view(4, 4, 2).permute(2, 0, 1)
        a = (q @ k.transpose(-1, -2) + bias).softmax(-1) @ v
        return self.proj(a.transpose(1, 2).reshape(x.shape[0], 4, 8))


class MhaBiasKV(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(16, 2, add_bias_kv=True, batch_first=True)
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.mha(x, x, x, need_weights=False)[0])


class ScalarParams(nn.Module):
    """Class 5: a learned 0-d and a 1-element parameter (Paddle-style w_0/w_1, CLIP's logit_scale)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.w_0 = nn.Parameter(torch.tensor(0.7))
        self.w_1 = nn.Parameter(torch.tensor([0.3]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * self.w_0 + x * self.w_1


class SharedLinear(nn.Module):
    """Class 6: one Linear called twice on 3-D inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(22, 22)
        self.a = nn.Linear(22, 22)
        self.b = nn.Linear(22, 22)
        self.head = nn.Linear(22, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(self.a(x)) + self.fc(self.b(x))
        return self.head(h)


class ConstantWeight(nn.Module):
    """Class 7: a conv and a linear whose weights are made in forward (ConstantOfShape), no parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.conv1d(x, torch.ones(8, 4, 3))
        return self.fc(nn.functional.linear(h.mean(-1), torch.zeros(8, 8) + 0.5))


class FoldOrder(nn.Module):
    """Per-module counts: BatchNorms whose names sort apart from graph order (bn_z first in the graph)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_b = nn.Conv2d(3, 4, 3, bias=False)
        self.bn_z = nn.BatchNorm2d(4)
        self.conv_a = nn.Conv2d(4, 8, 3, bias=False)
        self.bn_a = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 3)  # keeps its state_dict name: the file is no frozen (nameless) module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn_a(self.conv_a(self.bn_z(self.conv_b(x)).relu())).relu()
        return self.fc(h.mean((2, 3)))


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x).relu()


class _Inner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.model = _Block()
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.model(x))


class NestedSameName(nn.Module):
    """Per-module counts: a child named like its parent (Hugging Face's `model.model.layers`)."""

    def __init__(self) -> None:
        super().__init__()
        self.model = _Inner()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class _NoBiasBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(8, bias=False)
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x))


class HeadCalledThrough(nn.Module):
    """Per-module counts: a Sequential head whose children the parent calls one by one (timm's MetaFormer
    `forward_head`: `self.head.norm(x)`), so TorchScript never enters `head`'s scope; LayerNorm(bias=False)
    inside a ModuleList (a dotted scope, `/blocks/blocks.0/norm`)."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([_NoBiasBlock(), _NoBiasBlock()])
        self.head = nn.Sequential(OrderedDict(norm=nn.LayerNorm(8), fc=nn.Linear(8, 4)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head.fc(self.head.norm(x))


class _TokenBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.gamma = nn.Parameter(torch.ones(8))

    def forward(self, x: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        u = torch.cat([cls, x], 1)
        return u + self.gamma * self.fc(u)


class RootToken(nn.Module):
    """Per-module counts: a root parameter (CaiT's cls_token) expanded for a child's call: the file files it
    under the child's row; torch counts it in the root module, which its counts do not list."""

    def __init__(self) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 8))
        self.block = _TokenBlock()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x, self.cls_token.expand(x.shape[0], -1, -1))


class TiedEmbedding(nn.Module):
    """Per-module counts: an output projection tied to the embedding (GPT-2's lm_head and wte)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(16, 8)
        self.mix = nn.Linear(8, 8)
        self.out = nn.Linear(8, 16, bias=False)
        self.out.weight = self.emb.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.mix(self.emb(ids)).relu())


def _zoo() -> dict[str, tuple[Callable[[], nn.Module], torch.Tensor]]:
    def sn() -> nn.Module:
        return nn.Sequential(parametrizations.spectral_norm(nn.Linear(8, 4)), nn.ReLU(), nn.Linear(4, 2))

    def wn() -> nn.Module:
        return nn.Sequential(parametrizations.weight_norm(nn.Conv1d(4, 6, 3), dim=None), nn.Conv1d(6, 2, 1))

    def wn0() -> nn.Module:
        return nn.Sequential(parametrizations.weight_norm(nn.Linear(8, 6)), nn.ReLU(), nn.Linear(6, 2))

    def sn_old() -> nn.Module:  # the hook API: weight_orig, weight_u, weight_v
        return nn.Sequential(nn.utils.spectral_norm(nn.Conv2d(3, 6, 3)), nn.ReLU(), nn.Conv2d(6, 2, 1))

    def wn_old() -> nn.Module:  # the hook API: weight_g, weight_v
        return nn.Sequential(nn.utils.weight_norm(nn.Linear(8, 6)), nn.ReLU(), nn.Linear(6, 2))

    return {
        "zoo_spectral_norm_hook": (sn_old, torch.randn(2, 3, 8, 8)),
        "zoo_weight_norm_hook": (wn_old, torch.randn(2, 8)),
        "zoo_norms_no_affine": (NormsNoAffine, torch.randn(2, 3, 8, 8)),
        "zoo_instance_no_affine": (InstanceNoAffine, torch.randn(2, 3, 8, 8)),
        "zoo_zero_bias_attention": (ZeroBiasAttention, torch.randn(2, 4, 8)),
        "zoo_tables": (Tables, torch.randn(2, 3, 8, 8)),
        "zoo_relative_index_bias": (RelativeIndexBias, torch.randn(2, 4, 8)),
        "zoo_mha_bias_kv": (MhaBiasKV, torch.randn(2, 5, 16)),
        "zoo_spectral_norm": (sn, torch.randn(2, 8)),
        "zoo_weight_norm_scalar_g": (wn, torch.randn(2, 4, 10)),
        "zoo_weight_norm": (wn0, torch.randn(2, 8)),
        "zoo_scalar_params": (ScalarParams, torch.randn(2, 8)),
        "zoo_shared_linear": (SharedLinear, torch.randn(2, 3, 22)),
        "zoo_constant_weight": (ConstantWeight, torch.randn(2, 4, 10)),
        "zoo_snake": (Snake, torch.randn(2, 4, 12)),
        "zoo_fold_order": (FoldOrder, torch.randn(2, 3, 8, 8)),
        "zoo_nested_same_name": (NestedSameName, torch.randn(2, 8)),
        "zoo_tied_embedding": (TiedEmbedding, torch.randint(0, 16, (2, 5))),
        "zoo_head_called_through": (HeadCalledThrough, torch.randn(2, 5, 8)),
        "zoo_root_token": (RootToken, torch.randn(2, 5, 8)),
    }


# ---------------------------------------------------------------------------------------------
# timm and Hugging Face at tiny widths
# ---------------------------------------------------------------------------------------------
def _timm() -> dict[str, tuple[Callable[[], nn.Module], torch.Tensor]]:
    # PyPI's torchvision wheel is the CUDA build, whose ops library cannot load beside torch+cpu; timm only
    # needs its Python transforms: skip the op registrations that need the library.
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
    import timm
    from timm.models import efficientnet, metaformer, mlp_mixer

    def make(name: str, **kw: object) -> Callable[[], nn.Module]:
        return lambda: timm.create_model(name, pretrained=False, num_classes=5, **kw)

    img32, img56 = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 56, 56)
    vit = {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2}
    return {
        "timm_vit": (make("vit_tiny_patch16_224", **vit), img32),
        "timm_deit_distilled": (make("deit_tiny_distilled_patch16_224", **vit), img32),
        "timm_cait": (make("cait_xxs24_224", **vit), img32),
        "timm_beit": (make("beit_base_patch16_224", **vit), img32),
        "timm_convnext": (make("convnext_atto", dims=(8, 16, 24, 32), depths=(1, 1, 1, 1)), img32),
        "timm_swin": (
            make("swin_tiny_patch4_window7_224", img_size=56, embed_dim=16, depths=(1, 1), num_heads=(1, 2)),
            img56,
        ),
        "timm_levit": (make("levit_128s", img_size=64), torch.randn(2, 3, 64, 64)),
        "timm_mixer": (
            lambda: mlp_mixer.MlpMixer(num_classes=5, img_size=32, patch_size=8, embed_dim=32, num_blocks=2),
            img32,
        ),
        "timm_poolformer": (
            lambda: metaformer.MetaFormer(
                depths=(1, 1, 1, 1), dims=(8, 16, 24, 32), token_mixers=metaformer.Pooling,
                norm_layers=metaformer.GroupNorm1, mlp_act=nn.GELU, layer_scale_init_values=1e-5,
                res_scale_init_values=None, use_mlp_head=False, num_classes=5,
            ),
            img32,
        ),  # fmt: skip
        "timm_resnet": (make("resnet10t"), img32),
        "timm_efficientnet": (
            lambda: efficientnet._gen_efficientnet("efficientnet_b0", channel_multiplier=0.25, num_classes=5),
            img32,
        ),
        "timm_mobilenetv3": (make("mobilenetv3_small_050"), img32),
        "timm_regnet": (make("regnetx_002"), img32),
    }


def _hf() -> dict[str, tuple[Callable[[], nn.Module], torch.Tensor]]:
    import transformers as tr

    ids = torch.randint(0, 64, (2, 6))
    small = {"vocab_size": 64}

    def bert() -> nn.Module:
        cfg = tr.BertConfig(
            **small, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
            max_position_embeddings=16,
        )  # fmt: skip
        return tr.BertModel(cfg, add_pooling_layer=False)  # the pooler is not on the exported path

    def gpt2() -> nn.Module:
        cfg = tr.GPT2Config(**small, n_embd=16, n_layer=2, n_head=2, n_positions=16)
        return tr.GPT2LMHeadModel(cfg)

    def llama() -> nn.Module:
        cfg = tr.LlamaConfig(
            **small, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=2, max_position_embeddings=16,
        )  # fmt: skip
        return tr.LlamaForCausalLM(cfg)

    def t5() -> nn.Module:
        cfg = tr.T5Config(**small, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2, decoder_start_token_id=0)
        return T5Wrap(tr.T5ForConditionalGeneration(cfg))

    def distilbert() -> nn.Module:
        cfg = tr.DistilBertConfig(**small, dim=16, n_layers=1, n_heads=2, hidden_dim=32, max_position_embeddings=16)
        return tr.DistilBertModel(cfg)

    return {
        "hf_bert": (bert, ids),
        "hf_gpt2": (gpt2, ids),
        "hf_llama": (llama, ids),
        "hf_t5": (t5, ids),
        "hf_distilbert": (distilbert, ids),
    }


class T5Wrap(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids, decoder_input_ids=ids).logits


class Plain(nn.Module):
    """HF models return dataclasses: keep the first tensor."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if isinstance(out, torch.Tensor):
            return out
        return out[0]


# ---------------------------------------------------------------------------------------------
# what torch says, and the exports
# ---------------------------------------------------------------------------------------------
def counts(model: nn.Module) -> dict[str, object]:
    persistent = set(model.state_dict(keep_vars=True))
    modules = {}
    for name, module in model.named_modules():
        params = sum(p.numel() for p in module.parameters(recurse=False))
        if not name or not params:
            continue
        stats = sum(b.numel() for n, b in module.named_buffers(recurse=False) if n in STATS)
        modules[name] = {"parameters": params, "buffers": stats, "class": type(module).__name__}
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "running_stats": sum(b.numel() for n, b in model.named_buffers() if n.rsplit(".", 1)[-1] in STATS),
        "state_buffers": sum(
            b.numel()
            for n, b in model.named_buffers()
            if n in persistent and not n.endswith("num_batches_tracked") and b.is_floating_point()
        ),
        "modules": modules,
    }


def randomize(model: nn.Module) -> None:
    """Non-trivial values (exporters fold ones and zeros away), but not the spectral_norm vectors."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=generator) * 0.1 + 0.05)
        for n, b in model.named_buffers():
            if b.is_floating_point() and n.rsplit(".", 1)[-1] in STATS:
                b.copy_(torch.rand(b.shape, generator=generator) * 0.1 + 0.5)


VARIANTS: dict[str, dict[str, object]] = {
    "legacy_fold": {"dynamo": False, "do_constant_folding": True, "opset_version": 17},
    "legacy_nofold": {"dynamo": False, "do_constant_folding": False, "opset_version": 17},
    "dynamo": {"dynamo": True, "external_data": False, "opset_version": 18},
    "dynamo_noopt": {"dynamo": True, "external_data": False, "opset_version": 18, "optimize": False},
}


class Timeout(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Timeout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--only", nargs="*", default=[])
    parser.add_argument("--kinds", nargs="*", default=list(VARIANTS))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    args.out.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGALRM, _alarm)
    cases = {**_zoo(), **_timm(), **_hf()}
    for name, (factory, x) in cases.items():
        if args.only and not any(name.startswith(o) for o in args.only):
            continue
        torch.manual_seed(0)
        try:
            model = factory()
        except Exception as exc:  # noqa: BLE001
            print(f"{name}: not built ({type(exc).__name__}: {exc})", flush=True)
            continue
        if name.startswith("hf_") and name != "hf_t5":
            model = Plain(model)
        model.eval()
        randomize(model)
        record = counts(model)
        for kind in args.kinds:
            options = VARIANTS[kind]
            target = args.out / f"{name}__{kind}.onnx"
            if target.exists():
                continue
            signal.alarm(240)
            try:
                with torch.no_grad():
                    torch.onnx.export(model, (x,), str(target), **options)
            except BaseException as exc:  # noqa: BLE001
                print(f"{target.name}: not exported ({type(exc).__name__}: {str(exc)[:200]})", flush=True)
                traceback.print_exc(limit=0)
                target.unlink(missing_ok=True)
                continue
            finally:
                signal.alarm(0)
            data = {"model": name, "kind": kind, **record, "exporter": {"torch": torch.__version__, **options}}
            target.with_name(target.stem + ".counts.json").write_text(json.dumps(data, indent=1, sort_keys=True))
            print(f"{target.name}: parameters {record['parameters']}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
