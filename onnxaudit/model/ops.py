"""What the pipeline knows about ONNX ops, in one place: domains, the role each input slot gives a
constant, the slots' names, the layout and quantization op sets, and the products' output channels.

Role names (`weight`, `bn_mean`...) are count/roles.py's vocabulary; this table only says which slot
holds which. Sets built from one another say how they differ.
"""

from __future__ import annotations

# ---------------------------------------------------------------- domains

STD_DOMAINS = ("", "ai.onnx")
MS_DOMAINS = ("com.microsoft",)
STD_MS_DOMAINS = STD_DOMAINS + MS_DOMAINS
# onnxruntime's layout domains: standard ops rewritten for blocked (NCHWc, saved at ORT_ENABLE_ALL) or
# channels-last layouts, their weights reordered but their input slots those of the standard op
# (nchwc Conv adds a fourth, Sum: a run-time tensor added to the output).
LAYOUT_DOMAINS = ("com.microsoft.nchwc", "com.ms.internal.nhwc")

# ---------------------------------------------------------------- layout and quantization op sets

# Ops that take quantized weights themselves (onnxruntime's QOperator format and its contrib ops), each
# with the float op it stands for: a quantized file's layer is the same layer, not an op change.
QUANTIZED_FLOAT_OP: dict[str, str] = {
    "QLinearConv": "Conv", "ConvInteger": "Conv", "QLinearConvTranspose": "ConvTranspose",
    "QLinearMatMul": "MatMul", "MatMulInteger": "MatMul", "MatMulNBits": "MatMul", "MatMulBnb4": "MatMul",
    "DynamicQuantizeMatMul": "MatMul", "MatMulIntegerToFloat": "MatMul", "QOrderedMatMul": "MatMul",
    "QGemm": "Gemm", "QAttention": "Attention", "QEmbedLayerNormalization": "EmbedLayerNormalization",
    "DynamicQuantizeLSTM": "LSTM", "GatherBlockQuantized": "Gather",
}  # fmt: skip
QOPERATOR_WEIGHT_OPS = frozenset(QUANTIZED_FLOAT_OP)
# quantized ops over activations only, with their float op
QUANTIZED_ACTIVATION_OP: dict[str, str] = {
    "QLinearAdd": "Add", "QLinearMul": "Mul", "QLinearGlobalAveragePool": "GlobalAveragePool",
    "QLinearAveragePool": "AveragePool", "QLinearSigmoid": "Sigmoid", "QLinearLeakyRelu": "LeakyRelu",
    "QLinearSoftmax": "Softmax",
}  # fmt: skip

# Ops that move, reshape or re-type a tensor and leave its values as they are.
LAYOUT_OPS = frozenset({"Transpose", "Reshape", "Identity", "Cast", "Squeeze", "Unsqueeze"})
# ... and Flatten: the ops tf2onnx's NHWC<->NCHW Transposes and a Dense's Flatten are among
LAYOUT_OR_FLATTEN = LAYOUT_OPS | {"Flatten"}
# ... without Transpose: the axes stay in order (a gamma on its way to its Mul)
RESHAPING_OPS = LAYOUT_OR_FLATTEN - {"Transpose"}
# ... and the Shape and Constant plumbing exporters put around a layer's real op
LAYOUT_OR_PLUMBING = LAYOUT_OPS | {"Shape", "Constant"}
# Static quantization's QDQ form: a QuantizeLinear/DequantizeLinear pair on every activation and weight.
QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
# ... and its QOperator form of the element-wise ops: each operand's scale and zero point between them
QOPERATOR_ELEMENTWISE = frozenset({"QLinearAdd", "QLinearMul"})
# What a value passes through unchanged but for layout or dtype: a product on its way to its bias's Add,
# a normalized value on its way to its scale, through QDQ pairs.
LAYOUT_OR_QDQ = LAYOUT_OPS | QDQ_OPS
# What a stored tensor passes through before its consumer: quantized, dequantized or cast.
STORED_THROUGH = QDQ_OPS | {"Cast", "Identity"}
# Ops that move or cut a tensor without changing what it is: a weight passing through stays a weight.
WEIGHT_CARRIERS = LAYOUT_OR_FLATTEN | {"Slice", "Concat", "Split", "Expand", "Tile", "CastLike", "DequantizeLinear"}
# Ops a feature map passes through with its channel count unchanged (a conv's output on its way to a BN).
CHANNELS_KEPT = frozenset({"Transpose", "Reshape", "Identity", "Cast", "Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh"})
# The two operands of an element-wise op, and their QOperator forms'.
OPERAND_SLOTS = {"Mul": (0, 1), "Add": (0, 1), "QLinearMul": (0, 3), "QLinearAdd": (0, 3)}
MULS = ("Mul", "QLinearMul")

# ---------------------------------------------------------------- slot roles

DATA = "data"  # an activation slot: a constant there has no parameter role of its own

# The role of a constant in each input slot, per op (DATA: an activation slot). Variadic or
# context-dependent ops (Gather, Add, Mul, matrix products, Loop/Scan, functions) are the classifier's to tell.
SLOT_TABLE: dict[str, tuple[str, ...]] = {
    "Conv": (DATA, "weight", "bias"),
    "ConvTranspose": (DATA, "weight", "bias"),
    "BatchNormalization": (DATA, "bn_gamma", "bn_beta", "bn_mean", "bn_var"),
    "InstanceNormalization": (DATA, "norm_scale", "norm_bias"),
    "LayerNormalization": (DATA, "norm_scale", "norm_bias"),
    "GroupNormalization": (DATA, "norm_scale", "norm_bias"),
    "RMSNormalization": (DATA, "norm_scale"),
    "SimplifiedLayerNormalization": (DATA, "norm_scale", "norm_bias"),
    "LSTM": (DATA, "rnn_W", "rnn_R", "rnn_B", "shape", "initial_state", "initial_state", "rnn_P"),
    "GRU": (DATA, "rnn_W", "rnn_R", "rnn_B", "shape", "initial_state"),
    "RNN": (DATA, "rnn_W", "rnn_R", "rnn_B", "shape", "initial_state"),
    "PRelu": (DATA, "prelu_slope"),
    "QuantizeLinear": (DATA, "quant_scale", "quant_zero_point"),
    "DequantizeLinear": (DATA, "quant_scale", "quant_zero_point"),
    "DynamicQuantizeLinear": (DATA,),
    "QLinearConv": (
        DATA,
        "quant_scale",
        "quant_zero_point",
        "weight",
        "quant_scale",
        "quant_zero_point",
        "quant_scale",
        "quant_zero_point",
        "bias",
    ),  # fmt: skip
    "ConvInteger": (DATA, "weight", "quant_zero_point", "quant_zero_point"),
    "Reshape": (DATA, "shape"),
    "Slice": (DATA, "shape", "shape", "shape", "shape"),
    "Pad": (DATA, "shape", "literal", "shape"),
    "Expand": (DATA, "shape"),
    "Tile": (DATA, "shape"),
    "Resize": (DATA, "shape", "shape", "shape"),
    "Upsample": (DATA, "shape"),
    "Squeeze": (DATA, "shape"),
    "Unsqueeze": (DATA, "shape"),
    "TopK": (DATA, "shape"),
    "ConstantOfShape": ("shape",),
    "Range": ("shape", "shape", "shape"),
    "OneHot": ("shape", "shape", "literal"),
    "Split": (DATA, "shape"),
    # sequences (torch.onnx dynamo without its optimizer splits MultiheadAttention's in_proj_bias so)
    "SplitToSequence": (DATA, "shape"),
    "SequenceAt": (DATA, "shape"),
    "SequenceErase": (DATA, "shape"),
    "SequenceInsert": (DATA, DATA, "shape"),
    "Clip": (DATA, "literal", "literal"),
    "CumSum": (DATA, "shape"),
    "Trilu": (DATA, "shape"),
    "GatherElements": (DATA, "shape"),
    "GatherND": (DATA, "shape"),
    "ScatterND": (DATA, "shape", DATA),
    "ScatterElements": (DATA, "shape", DATA),
    "NonMaxSuppression": (DATA, DATA, "shape", "literal", "literal"),
    "Dropout": (DATA, "literal", "literal"),
    "CenterCropPad": (DATA, "shape"),
    "Col2Im": (DATA, "shape", "shape"),
    "RotaryEmbedding": (DATA, "precomputed", "precomputed", "shape"),  # opset 23
    "DeformConv": (DATA, "weight", DATA, "bias", DATA),  # opset 19: X, W, offset, B, mask
}
for _op in ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
            "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"):  # fmt: skip
    SLOT_TABLE[_op] = (DATA, "shape")

# QOperator element-wise ops of two operands: each operand's and the output's scale and zero point
_SCALE_ZP = ("quant_scale", "quant_zero_point")
_QLINEAR_BINARY = (DATA, *_SCALE_ZP, DATA, *_SCALE_ZP, *_SCALE_ZP)

# EmbedLayerNormalization and its quantized form share these first inputs: input_ids, segment_ids,
# the word, position and segment tables, gamma, beta, mask
_EMBED_LAYER_NORM = ("shape", "shape", "embedding", "embedding", "embedding", "norm_scale", "norm_bias", "shape")

# com.microsoft contrib ops (onnxruntime): names from its ContribOperators documentation.
MS_SLOT_TABLE: dict[str, tuple[str, ...]] = {
    "Attention": (DATA, "weight", "bias", "shape", "initial_state", DATA, "shape", DATA, DATA),
    "MultiHeadAttention": (DATA, DATA, DATA, "bias", "shape", DATA, "initial_state", "initial_state"),
    "SkipLayerNormalization": (DATA, DATA, "norm_scale", "norm_bias", "bias"),
    "SkipSimplifiedLayerNormalization": (DATA, DATA, "norm_scale", "bias"),
    "SimplifiedLayerNormalization": (DATA, "norm_scale"),
    "EmbedLayerNormalization": (*_EMBED_LAYER_NORM, "shape"),  # then position_ids
    "FusedConv": (DATA, "weight", "bias", DATA),
    "NhwcConv": (DATA, "weight", "bias"),
    "MatMulNBits": (DATA, "weight", "quant_scale", "quant_zero_point", "shape", "bias"),
    "GatherBlockQuantized": ("embedding", "shape", "quant_scale", "quant_zero_point"),
    "DynamicQuantizeMatMul": (DATA, "weight", "quant_scale", "quant_zero_point", "bias"),
    "MatMulIntegerToFloat": (
        DATA,
        "weight",
        "quant_scale",
        "quant_scale",
        "quant_zero_point",
        "quant_zero_point",
        "bias",
    ),
    "QGemm": (
        DATA,
        "quant_scale",
        "quant_zero_point",
        "weight",
        "quant_scale",
        "quant_zero_point",
        "bias",
        "quant_scale",
        "quant_zero_point",
    ),  # fmt: skip
    "QuantizeLinear": (DATA, "quant_scale", "quant_zero_point"),
    "DequantizeLinear": (DATA, "quant_scale", "quant_zero_point"),
    "BiasGelu": (DATA, "bias"),
    "FastGelu": (DATA, "bias"),
    "BiasAdd": (DATA, "bias", DATA),
    "BiasSoftmax": (DATA, DATA),
    "QLinearConv": SLOT_TABLE["QLinearConv"],
    "GroupQueryAttention": (
        DATA,
        DATA,
        DATA,
        "initial_state",
        "initial_state",
        "shape",
        "shape",
        "precomputed",
        "precomputed",
        "shape",
        DATA,
        "weight",
    ),  # fmt: skip
    "RotaryEmbedding": (DATA, "shape", "precomputed", "precomputed"),
    "QAttention": (
        DATA,
        "weight",
        "bias",
        "quant_scale",
        "quant_scale",
        "shape",
        "quant_zero_point",
        "quant_zero_point",
        "initial_state",
    ),  # fmt: skip
    "DynamicQuantizeLSTM": (
        DATA,
        "rnn_W",
        "rnn_R",
        "rnn_B",
        "shape",
        "initial_state",
        "initial_state",
        "rnn_P",
        "quant_scale",
        "quant_zero_point",
        "quant_scale",
        "quant_zero_point",
    ),  # fmt: skip
    "GemmFastGelu": (DATA, "weight", "bias"),
    "BiasSplitGelu": (DATA, "bias"),
    "MoE": (DATA, DATA, "weight", "bias", "weight", "bias", "weight", "bias"),
    # onnxruntime's quantize_dynamic of EmbedLayerNormalization: quantized tables, then scales, zero points
    "QEmbedLayerNormalization": (
        *_EMBED_LAYER_NORM,
        *("quant_scale",) * 5,
        *("quant_zero_point",) * 5,
    ),  # fmt: skip
    "QLinearConvTranspose": SLOT_TABLE["QLinearConv"],
    "MatMulBnb4": (DATA, "weight", "quant_scale"),  # A, B (4-bit, two per byte), absmax; N x K logical
    # Gemm with a fused activation: A, B, C
    "FusedGemm": (DATA, "weight", "bias"),
    # onnxruntime's own LayerNormalization and group norms, written in its domain by older tools
    "LayerNormalization": (DATA, "norm_scale", "norm_bias"),
    "GroupNorm": (DATA, "norm_scale", "norm_bias"),
    "SkipGroupNorm": (DATA, "norm_scale", "norm_bias", DATA, "bias"),
    "BiasDropout": (DATA, "bias", DATA, "literal", "literal"),
    "NhwcFusedConv": (DATA, "weight", "bias", DATA),
    "ConvTransposeWithDynamicPads": (DATA, "weight", "shape", "bias"),
    "RelativePositionBias": ("embedding", "shape", "shape"),  # a learned (buckets, heads) table
    "GatedRelativePositionBias": (DATA, "bias", DATA, "weight", "bias", "weight", DATA),
    # QOperator element-wise ops: each operand's scale and zero point
    "QLinearAdd": _QLINEAR_BINARY,
    "QLinearMul": _QLINEAR_BINARY,
    "QLinearGlobalAveragePool": (DATA, "quant_scale", "quant_zero_point", "quant_scale", "quant_zero_point"),
    "QLinearAveragePool": (DATA, "quant_scale", "quant_zero_point", "quant_scale", "quant_zero_point"),
    "QLinearSigmoid": (DATA, "quant_scale", "quant_zero_point", "quant_scale", "quant_zero_point"),
    "QLinearLeakyRelu": (DATA, "quant_scale", "quant_zero_point", "quant_scale", "quant_zero_point"),
    "QLinearSoftmax": (DATA, "quant_scale", "quant_zero_point", "quant_scale", "quant_zero_point"),
}

# Matrix products: whichever operand is constant is the weight.
MATMUL_OPERANDS: dict[str, tuple[int, ...]] = {
    "MatMul": (0, 1),
    "FusedMatMul": (0, 1),
    "MatMulInteger": (0, 1),
    "QLinearMatMul": (0, 3),
    "Gemm": (0, 1),
    "Einsum": (),  # every operand
}
MATMUL_QUANT_SLOTS: dict[str, dict[int, str]] = {
    "MatMulInteger": {2: "quant_zero_point", 3: "quant_zero_point"},
    "QLinearMatMul": {
        1: "quant_scale",
        2: "quant_zero_point",
        4: "quant_scale",
        5: "quant_zero_point",
        6: "quant_scale",
        7: "quant_zero_point",
    },  # fmt: skip
}

# Ops that make a weight-bearing product, so a constant Add right after them is its bias.
WEIGHT_OPS = frozenset({"MatMul", "Gemm", "Conv", "ConvTranspose", "FusedMatMul", "MatMulInteger",
                        "QLinearMatMul", "ConvInteger", "Einsum", "MatMulNBits", "MatMulBnb4"})  # fmt: skip
# Ops whose weight input is stored packed (two 4-bit values a byte): its logical dims are the node's to tell.
PACKED_OPS = frozenset({"MatMulNBits", "MatMulBnb4", "GatherBlockQuantized"})

# ai.onnx.ml ops whose learned values live in attributes (the tool counts tensors only).
ML_ATTRIBUTE_PARAMS: dict[str, str] = {
    "LinearClassifier": "coefficients, intercepts",
    "LinearRegressor": "coefficients, intercepts",
    "SVMClassifier": "support vectors, coefficients, rho",
    "SVMRegressor": "support vectors, coefficients, rho",
    "TreeEnsembleClassifier": "tree nodes, thresholds, leaf weights",
    "TreeEnsembleRegressor": "tree nodes, thresholds, leaf weights",
    "TreeEnsemble": "tree nodes, thresholds, leaf weights",
    "Scaler": "offset, scale",
}

# Never constant-folded: their outputs differ from run to run.
NONDETERMINISTIC = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                              "Multinomial", "Bernoulli"})  # fmt: skip

# ---------------------------------------------------------------- slot names

# The ONNX spec's names of the input slots, where a message or an explanation shows one.
SLOT_NAMES: dict[str, tuple[str, ...]] = {
    "Conv": ("X", "W", "B"),
    "ConvTranspose": ("X", "W", "B"),
    "Gemm": ("A", "B", "C"),
    "MatMul": ("A", "B"),
    "BatchNormalization": ("X", "scale", "B", "input_mean", "input_var"),
    "LayerNormalization": ("X", "Scale", "B"),
    "InstanceNormalization": ("input", "scale", "B"),
    "GroupNormalization": ("X", "scale", "bias"),
    "LSTM": ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"),
    "GRU": ("X", "W", "R", "B", "sequence_lens", "initial_h"),
    "RNN": ("X", "W", "R", "B", "sequence_lens", "initial_h"),
    "Gather": ("data", "indices"),
    "PRelu": ("X", "slope"),
    "Add": ("A", "B"),
    "DequantizeLinear": ("x", "x_scale", "x_zero_point"),
    "QuantizeLinear": ("x", "y_scale", "y_zero_point"),
    "MatMulNBits": ("A", "B", "scales", "zero_points", "g_idx", "bias"),
}

# ---------------------------------------------------------------- products

# Products whose output channels output_channels reads from the weight's dims.
CHANNEL_PRODUCTS = frozenset({"Conv", "ConvInteger", "QLinearConv", "ConvTranspose", "Gemm", "MatMul", "MatMulInteger"})


def output_channels(op_type: str, weight_dims: tuple[int, ...], group: int = 1, trans_b: bool = False) -> int:
    """How many output channels (features) a product with this weight writes: a conv's filters, a
    ConvTranspose's dims[1] x group, a Gemm's or MatMul's last dim (first with transB)."""
    if op_type in ("Conv", "ConvInteger", "QLinearConv") or (op_type == "Gemm" and trans_b):
        return weight_dims[0]
    if op_type == "ConvTranspose" and len(weight_dims) > 1:
        return weight_dims[1] * group
    return weight_dims[-1]
