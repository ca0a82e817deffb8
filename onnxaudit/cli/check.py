"""The `check` subcommand's parser and runner, registered in cli.COMMANDS."""

from __future__ import annotations

import argparse
import sys

from onnxaudit.check.rules import REGISTRY
from onnxaudit.check.runner import FAIL_ON, check
from onnxaudit.cli.limits import add_max_nodes
from onnxaudit.cli.shapes import dim_binding, dim_bindings, memory_size
from onnxaudit.render.check import RENDERERS


def _count(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def add_check(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "check",
        help="deployment rules: NaN weights, BN misuse, unsafe external data, unused or duplicate tensors...",
        description=(
            f"Apply the rules {REGISTRY.id_range} to MODEL (see README). Exit 0 clean, 1 findings at or above "
            "--fail-on, 2 unusable input or usage."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="path to a .onnx file")
    parser.add_argument(
        "--fail-on", choices=FAIL_ON, default="error", help="lowest severity that fails (default error)"
    )
    parser.add_argument("--select", metavar="RULE,...", help="only these rules (an ID or a prefix such as OA1)")
    parser.add_argument("--ignore", metavar="RULE,...", help="skip these rules")
    parser.add_argument("--max-params", metavar="N", type=_count, help="OA307 when the model holds more parameters")
    parser.add_argument("--max-macs", metavar="N", type=_count, help="OA309 when one inference takes more MACs")
    parser.add_argument(
        "--max-activation-memory", metavar="SIZE", type=memory_size,
        help="OA310 when the estimated peak of live activations is larger (e.g. 512MiB)",
    )  # fmt: skip
    parser.add_argument(
        "--dim", action="append", type=dim_binding, default=[], metavar="NAME=VALUE",
        help="bind a free input dim for --max-macs and --max-activation-memory (repeatable)",
    )  # fmt: skip
    parser.add_argument("--format", choices=sorted(RENDERERS), default="text")
    add_max_nodes(parser)


def run_check(args: argparse.Namespace) -> int:
    report = check(
        args.model,
        fail_on=args.fail_on,
        select=args.select,
        ignore=args.ignore,
        max_params=args.max_params,
        max_macs=args.max_macs,
        max_activation_memory=args.max_activation_memory,
        dims=dim_bindings(args),
        max_nodes=args.max_nodes,
    )
    sys.stdout.write(RENDERERS[args.format](report))
    return report.exit_code
