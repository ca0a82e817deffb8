"""Small PyTorch modules whose exports hold exporter-made constants: GroupNorm lowered through
InstanceNormalization, BatchNorm(affine=False), BatchNorm after a ConvTranspose, LSTM/GRU/RNN
without h0 (a zero state Expanded to the batch), layer scale and positional parameters that only
an Add or Mul reads, weight_norm/spectral_norm weights folded into one tensor, and an untrained
model whose equal tensors (unit BN scales and variances, zero shifts and means) the legacy exporter
stores once, the others as Identity nodes named after them, an ALBERT-style block called three
times (one module, its weights shared), which the exporters store once per call, scalars: a scalar
parameter (CLIP's logit_scale) and a float literal rescaling a norm's output (T5), and a registered
buffer read as a conv weight (Silero VAD's STFT basis), and Conv+BN pairs inside an If's branches
(a scripted module), torch.cond branches that read buffers of their own, a frozen module
(torch.jit.freeze folds its BNs and keeps no parameter name), and a conv applied to a constant grid
(dynamo folds it into one product), a linear weight forward computes from constants (dynamo stores it
as `add`), a Snake activation (its alpha's reciprocal folded beside alpha), and a LayerNorm and an RMSNorm written out as ops in an export
renamed as torch < 1.13 named things (no module scopes on its nodes).

Writes models/torchzoo/<case>__<legacy|dynamo>.onnx and a .json beside each with what torch itself
reported: sum(p.numel()) over parameters and the BN running statistics.

Run: /work/venvs/torch/bin/python scripts/export_torch_zoo.py [CASE ...]   (versions: scripts/requirements-torch.txt)
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "models" / "torchzoo"


class LayerScale(nn.Module):
    """ConvNeXt-style per-channel scale: a parameter only a Mul reads."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.gamma = nn.Parameter(torch.ones(8, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * self.gamma


class PositionalParameter(nn.Module):
    """ViT-style learned positions: a parameter only an Add reads."""

    def __init__(self) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(1, 6, 16))
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x + self.pos)


class SharedBlock(nn.Module):
    """ALBERT's cross-layer sharing: one feed-forward block applied three times, then a head."""

    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 8))
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(3):
            x = x + self.block(x)
        return self.head(x)


class SelfAttention(nn.Module):
    """nn.MultiheadAttention between two Linears: it calls out_proj's weight and bias in its own scope."""

    def __init__(self) -> None:
        super().__init__()
        self.pre = nn.Linear(8, 16)
        self.mha = nn.MultiheadAttention(16, 2, batch_first=True)
        self.post = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pre(x)
        return self.post(self.mha(h, h, h, need_weights=False)[0])


class BufferProjection(nn.Module):
    """Registered buffers read like weights: a fixed projection a MatMul reads, a shift a Sub reads."""

    def __init__(self) -> None:
        super().__init__()
        self.pre = nn.Linear(8, 16)
        self.register_buffer("proj", torch.randn(16, 12))
        self.register_buffer("shift", torch.randn(12))
        self.post = nn.Linear(12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.pre(x) @ self.proj - self.shift)


class ScalarParameter(nn.Module):
    """CLIP's logit_scale: a scalar nn.Parameter read through exp, its only reader."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.logit_scale = nn.Parameter(torch.tensor(2.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * self.logit_scale.exp()


class RescaledNorm(nn.Module):
    """T5's own RMS norm written out (pow, mean, rsqrt, * weight), then a rescale by a Python float
    before the head (T5 multiplies by d_model ** -0.5): the float is a literal, not a parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(16))
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight
        return self.head(x * 16**-0.5)


class RMSNorm(nn.Module):
    """LlamaRMSNorm on its own: `weight * x * rsqrt(mean(x^2) + eps)`, in float32, cast back."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)
        return self.weight * h.to(x.dtype)


class UnscopedNorms(nn.Module):
    """A LayerNorm and an RMSNorm, which the exporter writes out as ops below opset 17, the RMSNorm
    after a residual Add (not part of it)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.ln = nn.LayerNorm(16)
        self.fc2 = nn.Linear(16, 16)
        self.rms = RMSNorm(16)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln(torch.relu(self.fc1(x)))
        return self.head(self.rms(h + self.fc2(h)))


class LlamaStyleNorm(nn.Module):
    """LlamaRMSNorm: statistics in float32, the normalized value cast back (`.to(input_dtype)`) before
    `weight *`, which the exporter writes as a Cast between the two."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 16)
        self.weight = nn.Parameter(torch.ones(16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        dtype = h.dtype
        h = h.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)
        return self.weight * h.to(dtype)


class LogitsBias(nn.Module):
    """BART's head: a Linear without bias, then a registered buffer added to the logits
    (`+ self.final_logits_bias.to(device)`), which constant folding stores anonymously."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(8, 16)
        self.lm_head = nn.Linear(16, 10, bias=False)
        self.register_buffer("final_logits_bias", torch.zeros(1, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.body(x)) + self.final_logits_bias.to(x.device)


class StftBasis(nn.Module):
    """Silero VAD's front end: a fixed STFT basis registered as a buffer (`forward_basis_buffer`),
    applied by F.conv1d, then a learned conv: the legacy exporter stores the buffer like a parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("forward_basis_buffer", torch.randn(10, 1, 8))
        self.conv = nn.Conv1d(10, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.conv1d(x, self.forward_basis_buffer, stride=4))


class BranchConvBN(nn.Module):
    """Data-dependent control flow (exported scripted: an If node): each branch runs its own Conv+BN,
    which constant folding folds inside the branch."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.conv_a, self.bn_a = nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.conv_b, self.bn_b = nn.Conv2d(8, 16, 5, padding=2), nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        if bool(x.sum() > 0):
            x = self.bn_a(self.conv_a(x))
        else:
            x = self.bn_b(self.conv_b(x))
        return self.fc(x.mean(dim=(2, 3)))


class CondBuffers(nn.Module):
    """torch.cond (dynamo: an If node) whose branches each read a registered buffer and a conv of their own."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("basis_a", torch.randn(6, 1, 4))
        self.register_buffer("basis_b", torch.randn(5, 1, 4))
        self.a, self.b = nn.Conv1d(6, 4, 3), nn.Conv1d(5, 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def then(x: torch.Tensor) -> torch.Tensor:
            return self.a(nn.functional.conv1d(x, self.basis_a, stride=2)).mean(1)

        def other(x: torch.Tensor) -> torch.Tensor:
            return self.b(nn.functional.conv1d(x, self.basis_b, stride=2)).mean(1)

        return torch.cond(x.sum() > 0, then, other, (x,))


class PositionalProjection(nn.Module):
    """EdgeNeXt's positional encoding: a constant grid projected by a 1x1 conv and added to the tokens.
    dynamo folds conv(constant) into one stored product (`permute`), smaller than the conv it came from."""

    def __init__(self) -> None:
        super().__init__()
        self.proj, self.fc = nn.Conv2d(32, 6, 1), nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = torch.arange(4.0).reshape(1, 1, 2, 2).repeat(1, 32, 1, 1)
        return self.fc(x + self.proj(grid).reshape(1, 6, 4).permute(0, 2, 1))


class NormsWithoutAffine(nn.Module):
    """Norms whose ONNX op wants a scale and bias the module does not have: GroupNorm(affine=False),
    LayerNorm(elementwise_affine=False), LayerNorm(bias=False). The exporters write ones and zeros."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.gn = nn.GroupNorm(2, 8, affine=False)
        self.fc = nn.Linear(8, 16)
        self.ln = nn.LayerNorm(16, elementwise_affine=False)
        self.ln_nobias = nn.LayerNorm(16, bias=False)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.gn(self.conv(x)).mean((2, 3))
        return self.head(self.ln_nobias(self.ln(self.fc(h))))


class TracedLookups(nn.Module):
    """BERT's embeddings: position and token-type tables looked up at indices that tracing makes constants
    (an arange over the traced length, token type 0), added to the token embeddings."""

    def __init__(self) -> None:
        super().__init__()
        self.word = nn.Embedding(20, 8)
        self.position = nn.Embedding(12, 8)
        self.token_type = nn.Embedding(2, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1])
        types = torch.zeros_like(ids)
        return self.head(self.word(ids) + self.position(positions) + self.token_type(types))


class ConstantWeight(nn.Module):
    """A conv whose weight forward makes (torch.ones): no parameter, though it sits in a weight slot."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(nn.functional.conv1d(x, torch.ones(8, 4, 3)).mean(-1))


class ConstantSumWeight(nn.Module):
    """A linear whose weight forward computes from constants alone (torch.zeros(8, 8) + 0.5): dynamo's
    optimizer folds it into one initializer named after the op that made it last (`add`)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(nn.functional.linear(x, torch.zeros(8, 8) + 0.5))


class Snake(nn.Module):
    """BigVGAN's Snake activation, x + 1 / (alpha + eps) * sin(alpha * x)^2 with a learned alpha per
    channel: dynamo folds the reciprocal into a tensor of its own (`mul`) stored beside alpha."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 8, 3)
        self.alpha = nn.Parameter(torch.ones(1, 8, 1))
        self.conv2 = nn.Conv1d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        h = h + (1.0 / (self.alpha + 1e-9)) * torch.sin(self.alpha * h).pow(2)
        return self.conv2(h)


class SharedLinear2d3d(nn.Module):
    """One Linear called on a pooled 2-D input (Gemm reads its weight as stored) and on the 3-D sequence
    (MatMul reads the weight transposed, which constant folding stores again)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(24, 24)
        self.head = nn.Linear(24, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.fc(x).mean(1) + self.fc(x.mean(1)))


class LinearNorm(nn.Module):
    """LeViT's LinearNorm: a Linear without bias, then a BatchNorm1d over its features on the flattened
    sequence, reshaped back. Without the optimizer dynamo writes the weight's Transpose before the MatMul."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 10, bias=False)
        self.bn = nn.BatchNorm1d(10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return self.bn(y.flatten(0, 1)).reshape_as(y)


class ReshapeChain(nn.Module):
    """A Linear applied to the flattened sequence and reshaped back with sizes read from x.shape (ddddocr's
    CTC head): Shape, Gather, Mul, Unsqueeze and Concat compute each Reshape's target."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[0], x.shape[1]
        y = self.fc(x.reshape(b * t, -1))
        return y.reshape(b, t, -1).argmax(-1)


class TableRows(nn.Module):
    """Tables of which forward reads part: one row of a token-type table, the first rows of a position
    table (up to the traced length), one row of a table of scales read by a Mul. dynamo's optimizer and
    the TorchScript exporter's constant folding store only what was read (`select`, `slice`,
    `onnx::Add_N`): each table's size is in no file but dynamo's graph signature names it."""

    def __init__(self) -> None:
        super().__init__()
        self.token_type = nn.Embedding(3, 16)
        self.pos = nn.Parameter(torch.zeros(1, 12, 16))
        self.scales = nn.Parameter(torch.ones(4, 16))
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = (x + self.token_type.weight[0] + self.pos[:, : x.shape[1]]) * self.scales[1]
        return self.fc(h)


class UnusedModule(nn.Module):
    """A module forward never calls (torch counts its parameters) beside an output head tied to the
    embedding: dynamo's graph signature names both `unused.weight` and `emb.weight`, and the file stores
    neither (the tied one is read as `head.weight`); the TorchScript exporter keeps no trace of either."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.emb.weight
        self.unused = nn.Linear(4, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(ids))


def _cases() -> dict[str, tuple[nn.Module, torch.Tensor]]:
    return {
        "groupnorm": (
            nn.Sequential(nn.ConvTranspose2d(3, 8, 3, stride=2), nn.GroupNorm(2, 8), nn.PReLU(8)),
            torch.randn(1, 3, 8, 8),
        ),
        "bn_no_affine": (
            nn.Sequential(
                nn.Conv1d(4, 8, 3),
                nn.BatchNorm1d(8),
                nn.ReLU(),
                nn.Conv1d(8, 8, 3, groups=8, bias=False),
                nn.BatchNorm1d(8, affine=False),
            ),
            torch.randn(2, 4, 10),
        ),  # fmt: skip
        "bilstm_no_h0": (nn.LSTM(8, 6, num_layers=2, bidirectional=True, batch_first=True), torch.randn(1, 5, 8)),
        "gru_no_bias": (nn.GRU(8, 6, bias=False, batch_first=True), torch.randn(1, 5, 8)),
        "layer_scale": (LayerScale(), torch.randn(1, 3, 8, 8)),
        "ln_no_affine": (
            nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8, elementwise_affine=False), nn.Linear(8, 2)),
            torch.randn(2, 8),
        ),
        "weight_norm": (nn.Sequential(weight_norm(nn.Conv1d(4, 6, 3))), torch.randn(1, 4, 10)),
        "spectral_norm": (nn.Sequential(spectral_norm(nn.Linear(8, 4))), torch.randn(2, 8)),
        "positional": (PositionalParameter(), torch.randn(1, 6, 16)),
        # dynamo fuses the BN into the Linear's Gemm (or the ConvTranspose), which then sits in the BN's scope
        "linear_bn1d": (
            nn.Sequential(nn.Linear(8, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 3)),
            torch.randn(2, 8),
        ),
        "deconv_bn": (
            nn.Sequential(nn.ConvTranspose2d(3, 8, 2, stride=2), nn.BatchNorm2d(8), nn.ReLU()),
            torch.randn(1, 3, 8, 8),
        ),
        "untrained_bn": (
            nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8)),
            torch.randn(1, 3, 8, 8),
        ),
        # no conv bias: dynamo fuses each untrained BN into its conv, and the all-zero shift is dropped
        "untrained_conv_bn": (
            nn.Sequential(
                nn.Conv2d(3, 8, 3, bias=False),
                nn.BatchNorm2d(8),
                nn.ReLU(),
                nn.Conv2d(8, 8, 3, bias=False),
                nn.BatchNorm2d(8),
            ),
            torch.randn(1, 3, 8, 8),
        ),  # fmt: skip
        "self_attention": (SelfAttention(), torch.randn(1, 6, 8)),
        "buffer_projection": (BufferProjection(), torch.randn(2, 8)),
        # 3-D input: each Linear is a MatMul of the transposed weight, which constant folding stores per call
        "shared_block": (SharedBlock(), torch.randn(1, 4, 8)),
        # lowered to Pow/ReduceMean/Sqrt (no mean subtracted) below opset 23: a scale, no shift
        "rms_norm": (nn.Sequential(nn.Linear(8, 16), nn.RMSNorm(16), nn.Linear(16, 4)), torch.randn(2, 3, 8)),
        # eval mode with running stats: normalized like a BN over N*C channels, its statistics tiled per sample
        "instance_norm_stats": (
            nn.Sequential(nn.Conv2d(3, 4, 3), nn.InstanceNorm2d(4, affine=True, track_running_stats=True)),
            torch.randn(2, 3, 8, 8),
        ),
        "scalar_parameter": (ScalarParameter(), torch.randn(2, 8)),
        "rescaled_norm": (RescaledNorm(), torch.randn(2, 3, 16)),
        "logits_bias": (LogitsBias(), torch.randn(1, 4, 8)),
        "llama_norm": (LlamaStyleNorm(), torch.randn(1, 4, 8)),
        # the Reshape back to (N, C, H, W) merges with the Flatten after it: C from the conv before
        "instance_norm_flat": (
            nn.Sequential(
                nn.Conv2d(3, 4, 3),
                nn.InstanceNorm2d(4, affine=True, track_running_stats=True),
                nn.Flatten(),
                nn.Linear(4 * 6 * 6, 5),
            ),
            torch.randn(2, 3, 8, 8),
        ),
        "stft_buffer": (StftBasis(), torch.randn(1, 1, 64)),
        "branch_conv_bn": (BranchConvBN(), torch.randn(1, 3, 8, 8)),
        "unscoped_norms": (UnscopedNorms(), torch.randn(2, 3, 8)),
        "cond_buffers": (CondBuffers(), torch.randn(1, 1, 32)),
        "positional_projection": (PositionalProjection(), torch.randn(2, 4, 6)),
        # torch.jit.freeze folds each BN into the conv or Linear before it; the weights become Constant nodes
        "frozen_conv_bn": (
            nn.Sequential(
                nn.Conv2d(3, 8, 3),
                nn.BatchNorm2d(8),
                nn.ReLU(),
                nn.Conv2d(8, 8, 3, bias=False),
                nn.BatchNorm2d(8),
                nn.Flatten(),
                nn.Linear(8 * 4 * 4, 6),
                nn.BatchNorm1d(6),
            ),
            torch.randn(2, 3, 8, 8),
        ),  # fmt: skip
        "norms_without_affine": (NormsWithoutAffine(), torch.randn(2, 3, 8, 8)),
        "traced_lookups": (TracedLookups(), torch.randint(0, 20, (2, 5))),
        "constant_weight": (ConstantWeight(), torch.randn(2, 4, 10)),
        "constant_sum_weight": (ConstantSumWeight(), torch.randn(2, 8)),
        "snake": (Snake(), torch.randn(2, 4, 12)),
        "shared_linear_2d_3d": (SharedLinear2d3d(), torch.randn(2, 5, 24)),
        # weight_norm over the whole weight (dim=None): g is 0-d, read through g / |v| on the way to the conv
        "weight_norm_scalar_g": (
            nn.Sequential(weight_norm(nn.Conv1d(4, 6, 3), dim=None), nn.Conv1d(6, 2, 1)),
            torch.randn(1, 4, 10),
        ),
        # the hook API (torch.nn.utils.spectral_norm): buffers weight_u, weight_v beside weight_orig, read by
        # the MatMuls of sigma = u . W v (the parametrization API does not export through TorchScript)
        "spectral_norm_hook": (
            nn.Sequential(nn.utils.spectral_norm(nn.Conv2d(3, 6, 3)), nn.ReLU(), nn.Conv2d(6, 2, 1)),
            torch.randn(1, 3, 8, 8),
        ),
        "linear_norm": (LinearNorm(), torch.randn(2, 5, 16)),
        "reshape_chain": (ReshapeChain(), torch.randn(2, 5, 16)),
        # two BNs in a row: dynamo fuses both into the conv
        # parts of parameter tables read at constant indices: the rows read stored, the tables not
        "table_rows": (TableRows(), torch.randn(2, 5, 16)),
        "unused_module": (UnusedModule(), torch.randint(0, 10, (2, 5))),
        "conv_bn_bn": (
            nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.BatchNorm2d(4)),
            torch.randn(1, 3, 8, 8),
        ),
    }


# Exported as initialized: torch's defaults, equal across layers, are what this case is about.
UNTRAINED = frozenset({"untrained_bn", "untrained_conv_bn"})
# Also exported by the legacy exporter with constant folding (`__legacy_fold`), its default.
FOLDED = frozenset(
    {
        "shared_block",
        "logits_bias",
        "branch_conv_bn",
        "spectral_norm_hook",
        "traced_lookups",
        "shared_linear_2d_3d",
        "snake",
        "table_rows",
    }
)
# Also exported by dynamo without the onnxscript optimizer (`__dynamo_noopt`): layout ops kept.
NOOPT = frozenset({"linear_norm"})
# Exported at opset 13 with free batch and time (`__legacy_op13_dynamic`) only: onnx's shape inference
# gives a Reshape to a computed target no shape below opset 14, so each layer's data output is unknown.
DYNAMIC_OP13 = frozenset({"reshape_chain"})
# Exported as torch.jit.script makes them (the legacy exporter only): control flow becomes If/Loop nodes.
SCRIPTED = frozenset({"branch_conv_bn"})
# Exported as torch.jit.freeze(torch.jit.script(model)) makes them (the legacy exporter only).
FROZEN = frozenset({"frozen_conv_bn"})
# Exported at opset 14 by the legacy exporter and renamed as torch < 1.13 named things (`__legacy_op14_unscoped`):
# nodes `<op>_<n>`, values numbered, state_dict keys kept on the initializers (openWakeWord's heads, old hub files).
UNSCOPED = frozenset({"unscoped_norms"})


def _unscope(path: Path) -> None:
    """Rename an export as torch < 1.13 named it: node `<op>_<n>` by its place in the graph, every
    value between nodes a bare number; graph inputs, outputs and initializers (state_dict keys) kept."""
    model = onnx.load(str(path))
    graph = model.graph
    kept = {v.name for v in graph.input} | {v.name for v in graph.output} | {t.name for t in graph.initializer}
    numbered: dict[str, str] = {}
    for index, node in enumerate(graph.node):
        node.name = f"{node.op_type}_{index}"
        node.input[:] = [numbered.get(name, name) for name in node.input]
        for slot, name in enumerate(node.output):
            if name and name not in kept:
                numbered[name] = str(100 + len(numbered))
                node.output[slot] = numbered[name]
    del graph.value_info[:]
    onnx.save(model, str(path))


def _randomize(model: nn.Module) -> None:
    """Non-trivial values: exporters fold ones and zeros away."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=generator) * 0.1 + 0.05)
        for _, b in model.named_buffers():
            if b.is_floating_point():
                b.copy_(torch.rand(b.shape, generator=generator) * 0.1 + 0.5)


def main(only: list[str]) -> None:
    warnings.filterwarnings("ignore")
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for name, (model, x) in _cases().items():
        if only and name not in only:
            continue
        model.eval()
        if name not in UNTRAINED:
            _randomize(model)
        stats = ("running_mean", "running_var")
        counts = {
            "parameters": sum(p.numel() for p in model.parameters()),
            "running_stats": sum(b.numel() for n, b in model.named_buffers() if n.rsplit(".", 1)[-1] in stats),
        }
        variants = [
            ("legacy", {"dynamo": False, "do_constant_folding": False, "opset_version": 17}),
            ("dynamo", {"dynamo": True, "external_data": False, "opset_version": 18}),
        ]
        if name in FOLDED:
            variants.append(("legacy_fold", {"dynamo": False, "do_constant_folding": True, "opset_version": 17}))
        if name in NOOPT:
            variants.append(
                ("dynamo_noopt", {"dynamo": True, "external_data": False, "opset_version": 18, "optimize": False})
            )
        if name in DYNAMIC_OP13:
            dynamic = {"input_names": ["x"], "dynamic_axes": {"x": {0: "batch", 1: "time"}}}
            variants = [
                ("legacy_op13_dynamic", {"dynamo": False, "do_constant_folding": False, "opset_version": 13, **dynamic})
            ]
        if name in UNSCOPED:
            variants = [("legacy_op14_unscoped", {"dynamo": False, "do_constant_folding": False, "opset_version": 14})]
        if name in SCRIPTED or name in FROZEN:
            model = torch.jit.script(model)
            if name in FROZEN:
                model = torch.jit.freeze(model)
            variants = [v for v in variants if not v[1]["dynamo"]]
        for kind, options in variants:
            target = OUT / f"{name}__{kind}.onnx"
            try:
                torch.onnx.export(model, (x,), str(target), **options)
            except Exception as exc:  # noqa: BLE001 - e.g. aten::vdot (spectral_norm) has no TorchScript symbolic
                print(f"{target.name}: not exported ({type(exc).__name__})")
                continue
            if name in UNSCOPED:
                _unscope(target)
            record = {
                "model": name,
                "kind": kind,
                **counts,
                "exporter": {"torch": torch.__version__.split("+")[0], "onnx": onnx.__version__, **options},
            }
            target.with_suffix(".json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
            print(f"{target.name}: {counts}")


if __name__ == "__main__":
    main(sys.argv[1:])
