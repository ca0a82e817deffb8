"""How Keras and PyTorch would file each counted tensor: trainable vs non-trainable, parameter vs buffer."""

from __future__ import annotations

from dataclasses import dataclass

from onnxaudit.count.table import FROZEN, ParamTable

TRAINABLE = "trainable"
NON_TRAINABLE = "non_trainable"
UNCLASSIFIED = "unclassified"


@dataclass(frozen=True)
class Convention:
    name: str
    trainable_label: str  # column headers
    non_trainable_label: str
    trainable_footer: str  # footer line labels
    non_trainable_footer: str
    # role category -> column; categories not listed (quantization, shape, literal, state, unused) are
    # constants, not parameters, and stay out of the totals.
    columns: dict[str, str]

    def bucket(self, category: str) -> str | None:
        return self.columns.get(category)


KERAS = Convention(
    "keras",
    "Trainable",
    "Non-trainable",
    "Trainable params",
    "Non-trainable params",
    {"parameter": TRAINABLE, "statistic": NON_TRAINABLE, FROZEN: NON_TRAINABLE, "unclassified": UNCLASSIFIED},
)
PYTORCH = Convention(
    "pytorch",
    "Parameters",
    "Buffers",
    "Parameters (model.parameters())",
    "Buffers (BN running stats)",
    {"parameter": TRAINABLE, "statistic": NON_TRAINABLE, FROZEN: TRAINABLE, "unclassified": UNCLASSIFIED},
)
CONVENTIONS = {c.name: c for c in (KERAS, PYTORCH)}


def convention_notes(convention: Convention, table: ParamTable) -> list[str]:
    """What this convention's figures cannot show from an ONNX file, said plainly."""
    notes: list[str] = []
    if table.marks_training:
        frozen = sum(t.count or 0 for t in table.tensors if t.category == FROZEN)
        notes.append(
            f"trainable tensors read from the file's TrainingInfoProto.update_binding ({len(table.trained or ()):,} "
            f"initializers), which overrides every heuristic; {frozen:,} parameters it does not update are frozen"
            + (" (Keras: non-trainable)." if convention is KERAS else " (PyTorch: still in parameters()).")
        )
    elif convention is KERAS:
        notes.append(
            "Keras view: an ONNX file cannot show frozen layers (trainable=False); "
            "every weight is counted trainable, BN moving mean/variance non-trainable."
        )
    else:
        notes.append("PyTorch view: Parameters = model.parameters(); Buffers = BN running_mean + running_var.")
        bn_nodes = {u.node.index for t in table.tensors if t.role in ("bn_mean", "bn_var") for u in t.uses}
        if bn_nodes:
            unused_nbt = [t for t in table.tensors if t.role == "unused" and t.name.endswith("num_batches_tracked")]
            notes.append(
                f"PyTorch also keeps one int64 num_batches_tracked buffer per BatchNorm ({len(bn_nodes)} here); "
                "exporters never use it"
                + (f" ({len(unused_nbt)} stored unused in this file)" if unused_nbt else ", so it is not counted")
                + "."
            )
    return notes
