"""The hostile-input bombs of issue #17, each file under 20 MB: python benchmarks/bombs.py OUT_DIR [NAME...]."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from builders import concat_inputs, empty_nodes, nested_if  # noqa: E402

BOMBS = {
    "nodes_1m": lambda: empty_nodes(1_000_000),
    "nodes_9m": lambda: empty_nodes(9_000_000),
    "nodes_250k": lambda: empty_nodes(249_999),  # at the default --max-nodes, with linear()'s MatMul
    "concat_1m": lambda: concat_inputs(1_000_000),
    "concat_3m": lambda: concat_inputs(3_000_000),
    "concat_999k": lambda: concat_inputs(999_996),  # with the other nodes' 4: 1,000,000 inputs, the default limit
    "if_16": lambda: nested_if(17).SerializeToString(),  # 16 levels under the top If: 2**17 - 1 graphs
    "if_14": lambda: nested_if(15).SerializeToString(),
    "if_13": lambda: nested_if(14).SerializeToString(),
}

if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, build in BOMBS.items():
        if name in sys.argv[2:] or len(sys.argv) == 2:
            (out / f"{name}.onnx").write_bytes(build())
