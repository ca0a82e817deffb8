"""The roles a constant tensor can play, and the category each one counts in."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RoleInfo:
    category: str  # parameter | statistic | quantization | shape | literal | state | unclassified
    describe: str


ROLES: dict[str, RoleInfo] = {
    "weight": RoleInfo("parameter", "weight"),
    "bias": RoleInfo("parameter", "bias"),
    "bn_gamma": RoleInfo("parameter", "BN scale (gamma)"),
    "bn_beta": RoleInfo("parameter", "BN shift (beta)"),
    "bn_mean": RoleInfo("statistic", "BN moving/running mean"),
    "bn_var": RoleInfo("statistic", "BN moving/running variance"),
    "norm_scale": RoleInfo("parameter", "normalization scale"),
    "norm_bias": RoleInfo("parameter", "normalization bias"),
    "embedding": RoleInfo("parameter", "embedding table"),
    "rnn_W": RoleInfo("parameter", "RNN input weights W"),
    "rnn_R": RoleInfo("parameter", "RNN recurrent weights R"),
    "rnn_B": RoleInfo("parameter", "RNN biases B"),
    "rnn_P": RoleInfo("parameter", "RNN peephole weights P"),
    "prelu_slope": RoleInfo("parameter", "PRelu slope"),
    "scalar_parameter": RoleInfo("parameter", "scalar parameter (stored under its module attribute's name)"),
    "fx_parameter": RoleInfo("parameter", "parameter read as data (torch.onnx's node metadata says so)"),
    "named_parameter": RoleInfo("parameter", "a module's weight read as data (its state_dict name ends in .weight)"),
    "quant_scale": RoleInfo("quantization", "quantization scale"),
    "quant_zero_point": RoleInfo("quantization", "quantization zero point"),
    "shape": RoleInfo("shape", "shape-like constant (shape, axes, indices, sizes)"),
    "literal": RoleInfo("literal", "scalar literal"),
    "initial_state": RoleInfo("state", "initial recurrent/attention state"),
    "precomputed": RoleInfo("state", "precomputed table (rotary cos/sin cache): a non-persistent buffer"),
    "mask": RoleInfo("state", "boolean mask (causal/padding mask): a non-persistent buffer"),
    "buffer": RoleInfo("state", "registered buffer, not a parameter (torch.onnx's node metadata says so)"),
    "unclassified": RoleInfo("unclassified", "constant of unknown role"),
    "unused": RoleInfo("unused", "stored but consumed by no node"),
}


PARAMETER_CATEGORIES = frozenset({"parameter", "statistic"})


# Slot roles a constant keeps when it reaches them through run-time layout ops: an RNN's zero initial
# state broadcast by Expand to the batch (torch.onnx legacy LSTM/GRU/RNN without h0) is a state too.
FORWARD_CATEGORIES = PARAMETER_CATEGORIES | {"state"}
