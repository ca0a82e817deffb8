"""--max-nodes, shared by every subcommand that reads a model, and the whole-number type of such limits."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from onnxaudit.io.budget import INPUTS_PER_NODE, MAX_NODES, NODES_PER_GRAPH, VALUES_PER_NODE


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `minimum`, written with `_` or `,` between digits if liked."""

    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", "").replace(",", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more")
        return value

    return parse


def add_max_nodes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-nodes",
        metavar="N",
        type=whole_number(1),
        default=MAX_NODES,
        help=(
            f"refuse (exit 2) a model of more than N nodes, N initializers, {VALUES_PER_NODE}N graph values, "
            f"{INPUTS_PER_NODE}N node inputs or "
            f"N/{NODES_PER_GRAPH} "
            f"graphs, counting every subgraph and function (default {MAX_NODES:,}: a file costs under 1 GiB)"
        ),
    )
