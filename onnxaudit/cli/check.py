"""The `check` subcommand's parser and runner, registered in cli.COMMANDS."""

from __future__ import annotations

import argparse
import sys

from onnxaudit.check.baseline import baseline_json, read_baseline
from onnxaudit.check.rules import REGISTRY
from onnxaudit.check.runner import FAIL_ON, check_files
from onnxaudit.cli.limits import add_max_nodes, whole_number
from onnxaudit.cli.shapes import dim_binding, dim_bindings, memory_size
from onnxaudit.errors import AuditError
from onnxaudit.render.check import RENDERERS
from onnxaudit.render.check.text import render_text
from onnxaudit.render.layout import WIDTH
from onnxaudit.render.summary import escape


def add_check(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "check",
        help="deployment rules: NaN weights, BN misuse, unsafe external data, unused or duplicate tensors...",
        description=(
            f"Apply the rules {REGISTRY.id_range} to each MODEL (see README). Exit 0 clean, 1 findings at or "
            "above --fail-on, 2 unusable input or usage (the worst over all files)."
        ),
    )
    parser.add_argument("model", metavar="MODEL", nargs="+", help="path to a .onnx file or its URL (several allowed)")
    parser.add_argument(
        "--fail-on", choices=FAIL_ON, default="error", help="lowest severity that fails (default error)"
    )
    parser.add_argument("--select", metavar="RULE,...", help="only these rules (an ID or a prefix such as OA1)")
    parser.add_argument("--ignore", metavar="RULE,...", help="skip these rules")
    parser.add_argument(
        "--max-params", metavar="N", type=whole_number(0), help="OA307 when the model holds more parameters"
    )
    parser.add_argument(
        "--max-macs", metavar="N", type=whole_number(0), help="OA309 when one inference takes more MACs"
    )
    parser.add_argument(
        "--max-activation-memory", metavar="SIZE", type=memory_size,
        help="OA310 when the estimated peak of live activations is larger (e.g. 512MiB)",
    )  # fmt: skip
    parser.add_argument(
        "--dim", action="append", type=dim_binding, default=[], metavar="NAME=VALUE",
        help="bind a free input dim for --max-macs and --max-activation-memory (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--fetch-values", metavar="SIZE", type=memory_size,
        help="a MODEL at a URL: let the value rules fetch up to SIZE of weights (e.g. 64MiB); without it they "
        "are not run there, each noted",
    )  # fmt: skip
    parser.add_argument("--format", choices=list(RENDERERS), default="text")
    parser.add_argument(
        "--verbose", action="store_true", help="list every finding (text otherwise sums up a rule firing often)"
    )
    parser.add_argument(
        "--wide", action="store_true", help=f"text: every line whole (default: wrapped to {WIDTH} columns)"
    )
    baseline = parser.add_mutually_exclusive_group()
    baseline.add_argument(
        "--baseline", metavar="FILE", help="leave out the findings FILE accepts: fail only on new ones"
    )
    baseline.add_argument(
        "--write-baseline", metavar="FILE", help="write every finding to FILE as accepted, and exit 0"
    )
    parser.add_argument(
        "--exit-zero", action="store_true", help="exit 0 even when findings fail (2 still means unusable input)"
    )
    add_max_nodes(parser)


def run_check(args: argparse.Namespace) -> int:
    baseline = read_baseline(args.baseline) if args.baseline else None
    run = check_files(
        args.model,
        fail_on=args.fail_on,
        select=args.select,
        ignore=args.ignore,
        max_params=args.max_params,
        max_macs=args.max_macs,
        max_activation_memory=args.max_activation_memory,
        dims=dim_bindings(args),
        max_nodes=args.max_nodes,
        fetch_values=args.fetch_values,
    )
    for unusable in run.unusable:
        print(f"onnxaudit: {escape(unusable.error)}", file=sys.stderr)
    if baseline is not None:
        run = baseline.apply_run(run)
    if args.format == "text" and run.reports:
        sys.stdout.write(render_text(run, args.verbose, None if args.wide else WIDTH))
    elif run.reports or args.format in ("sarif", "junit", "jsonl"):
        sys.stdout.write(RENDERERS[args.format](run, args.verbose))
    if args.write_baseline:
        try:
            with open(args.write_baseline, "w", encoding="utf-8") as f:
                f.write(baseline_json(run))
        except OSError as exc:
            raise AuditError(f"{args.write_baseline}: cannot write the baseline ({exc.strerror or exc})") from None
        found = sum(len(r.findings) for r in run.reports)
        print(f"onnxaudit: wrote {found} findings to the baseline {escape(args.write_baseline)}", file=sys.stderr)
        return 2 if run.unusable else 0
    if args.exit_zero and not run.unusable:
        return 0
    return run.exit_code
