"""--max-nodes, shared by every subcommand that reads a model."""

from __future__ import annotations

import argparse

from onnxaudit.model.build import INPUTS_PER_NODE, MAX_NODES, NODES_PER_GRAPH


def _at_least_one(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def add_max_nodes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-nodes",
        metavar="N",
        type=_at_least_one,
        default=MAX_NODES,
        help=(
            f"refuse (exit 2) a model of more than N nodes, {INPUTS_PER_NODE}N node inputs or N/{NODES_PER_GRAPH} "
            f"graphs, counting every subgraph and function (default {MAX_NODES:,}: a file costs under 1 GiB)"
        ),
    )
