"""The `diff` subcommand's parser and runner, registered in cli.COMMANDS."""

from __future__ import annotations

import argparse
import sys

from onnxaudit.api import compare, gc_paused
from onnxaudit.cli.limits import add_max_nodes
from onnxaudit.count.conventions import CONVENTIONS
from onnxaudit.diff import DEFAULT_BUDGET, MODES
from onnxaudit.render.diff import RENDERERS, render_diff_text, write_diff_json
from onnxaudit.render.layout import WIDTH


def _bytes(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    clean = text.strip().lower().removesuffix("b").removesuffix("i")
    scale = units.get(clean[-1:], 1)
    try:
        value = int((clean[:-1] if scale > 1 else clean).replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a byte count such as 512M, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value * scale


def add_diff(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "diff",
        help="what changed between two exports: totals, layers aligned, quantization, sampled values",
        description=(
            "Compare OLD with NEW. Exit 0 when the logical counts agree (with --strict: and nothing else "
            "changed), 1 when they differ, 2 unusable input or usage."
        ),
    )
    parser.add_argument("old", metavar="OLD", help="path to the first .onnx file")
    parser.add_argument("new", metavar="NEW", help="path to the second .onnx file")
    parser.add_argument("--format", choices=sorted([*RENDERERS, "html"]), default="text")
    parser.add_argument(
        "--convention",
        choices=sorted(CONVENTIONS),
        default="keras",
        help="keras: trainable/non-trainable; pytorch: parameters/buffers (default keras)",
    )
    parser.add_argument(
        "--wide", action="store_true", help=f"text: every line whole (default: fit {WIDTH} columns, names shortened)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 on any change, not only the logical counts")
    parser.add_argument(
        "--values",
        choices=MODES,
        default="sample",
        help="sample: 64 positions per aligned tensor (default); full: whole tensors within --values-budget",
    )
    parser.add_argument(
        "--values-budget",
        metavar="BYTES",
        type=_bytes,
        default=DEFAULT_BUDGET,
        help=f"bytes per file --values full reads (default {DEFAULT_BUDGET >> 20}M), then samples",
    )
    add_max_nodes(parser)


@gc_paused  # through rendering: a collection over two reports' objects would cost more than writing them
def run_diff(args: argparse.Namespace) -> int:
    report = compare(args.old, args.new, args.convention, args.values, args.values_budget, max_nodes=args.max_nodes)
    if args.format == "text":
        sys.stdout.write(render_diff_text(report, None if args.wide else WIDTH))
    elif args.format == "html":
        from onnxaudit.render.diff_html import render_diff_html  # only this format needs it

        sys.stdout.write(render_diff_html(report))
    elif args.format == "json":
        write_diff_json(report, sys.stdout)  # in pieces: 250,000 layers are ~100 MB of JSON
    else:
        sys.stdout.write(RENDERERS[args.format](report))
    return report.exit_code(strict=args.strict)
