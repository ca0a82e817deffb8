"""Record what torch's own counter says a torch fixture costs, beside it (the fixture's .json, key
`flop_counter`): torch.utils.flop_counter.FlopCounterMode over one forward pass at the recorded input shape,
per module and in total, FLOPs halved into MACs (torch counts a multiply-accumulate as 2 FLOPs).

    python scripts/torch_flops.py [models/torch]      # in the venv of requirements-torch.txt

The modules are rebuilt by export_torch.build_model (the same classes; FLOPs do not depend on the weights).
torch's counter has formulas for convolutions, matrix products and attention only: BN, activations and
recurrent layers (aten::lstm, aten::gru) count 0 there, which tests/test_cost.py takes into account.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import export_torch  # noqa: E402 - beside this script


def flop_record(name: str, shape: list[int]) -> dict:
    model = export_torch.build_model(name)
    x = export_torch.example_input(name, shape[0], 0)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    per_module = counter.get_flop_counts()
    modules = {
        module: sum(by_op.values()) // 2
        for module, by_op in per_module.items()
        if module != "Global" and sum(by_op.values())
    }
    ops = {str(op): flops // 2 for op, flops in per_module.get("Global", {}).items()}
    return {
        "torch": torch.__version__,
        "input_shape": shape,
        "macs": counter.get_total_flops() // 2,
        "macs_by_aten_op": dict(sorted(ops.items())),
        "macs_by_module": dict(sorted(modules.items())),
        "note": "torch.utils.flop_counter.FlopCounterMode FLOPs / 2; no formula for BN, activations, LSTM/GRU",
    }


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else Path("models/torch")
    for path in sorted(folder.glob("*.json")):
        meta = json.loads(path.read_text())
        if meta.get("model") not in export_torch.MODELS:
            continue
        (shape,) = meta["input_shapes"].values()
        meta["flop_counter"] = flop_record(meta["model"], shape)
        path.write_text(json.dumps(meta, sort_keys=True, indent=1) + "\n")
        print(f"{path.name}: {meta['flop_counter']['macs']:,} MACs", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
