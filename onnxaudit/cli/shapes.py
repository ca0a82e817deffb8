"""Command line for shape confirmation: `onnxaudit shapes MODEL` and `summary --run-shapes`.

Exit 0 every shape confirmed, 1 mismatches, 2 unusable input or a run that was refused, killed or
could not start (one line on stderr; the counts are still printed).
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import TYPE_CHECKING

from onnxaudit.api import audit
from onnxaudit.cli.limits import add_max_nodes
from onnxaudit.count.conventions import CONVENTIONS
from onnxaudit.errors import UsageError
from onnxaudit.render.layout import WIDTH
from onnxaudit.render.summary import escape, write_json
from onnxaudit.report.build import Report
from onnxaudit.shapes.defaults import DEFAULT_MAX_MEMORY, DEFAULT_TIMEOUT, METHODS

if TYPE_CHECKING:
    from onnxaudit.shapes.options import ShapeOptions

_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 10**3, "kib": 2**10, "m": 2**20, "mb": 10**6, "mib": 2**20,
          "g": 2**30, "gb": 10**9, "gib": 2**30, "t": 2**40, "tb": 10**12, "tib": 2**40}  # fmt: skip
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def memory_size(text: str) -> int:
    """'4GiB', '512M', '1.5g', '1000000' -> bytes."""
    match = _MEMORY.match(text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS:
        raise argparse.ArgumentTypeError(f"expected a size like 4GiB or 512MiB, got {text!r}")
    amount = float(match.group(1)) * _UNITS[unit]
    if not amount < 2**60:  # an rlimit is a C long: a larger value failed deep in the run (and inf is not a size)
        raise argparse.ArgumentTypeError("must be less than 1 EiB")
    value = int(amount)
    if value < 2**20:
        raise argparse.ArgumentTypeError("must be at least 1 MiB")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value <= 7 * 86400:
        raise argparse.ArgumentTypeError("must be more than 0 and at most a week")
    return value


def dim_binding(text: str) -> tuple[str, int]:
    name, sep, value = text.rpartition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name}: expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{name}: must be 1 or more")
    return name, number


def input_file(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=FILE.npy, got {text!r}")
    return name, path


def add_run_options(parser: argparse.ArgumentParser, opt_in: bool) -> None:
    """The options of a shape run; with `opt_in`, nothing runs unless --run-shapes is given."""
    group = parser.add_argument_group("shape confirmation (runs the model once in onnxruntime)")
    if opt_in:
        group.add_argument(
            "--run-shapes", action="store_true", help="confirm the Output Shape column by running onnxruntime"
        )
    group.add_argument(
        "--dim", action="append", type=dim_binding, default=[], metavar="NAME=VALUE",
        help="bind an input dim by name, or by position as INPUT:AXIS=VALUE (unnamed, '?' and -1 dims; "
        "repeatable); a dim left free in a run gets a size chosen from the graph, printed with its reason; "
        "without --run-shapes it makes the MACs and memory figures concrete",
    )  # fmt: skip
    group.add_argument(
        "--input", action="append", type=input_file, default=[], metavar="NAME=FILE.npy",
        help="feed real data to an input instead of seeded values (repeatable)",
    )  # fmt: skip
    group.add_argument(
        "--timeout", type=seconds, default=None, help=f"wall-clock limit in seconds (default {DEFAULT_TIMEOUT:g})"
    )
    group.add_argument(
        "--max-memory", type=memory_size, default=None, metavar="SIZE",
        help=f"memory limit, e.g. 2GiB (default {DEFAULT_MAX_MEMORY // 2**30}GiB); estimated before, enforced during",
    )  # fmt: skip
    group.add_argument(
        "--method", choices=METHODS, default=None,
        help="how actual shapes are observed: profile (onnxruntime's profiler records every node's tensors while "
        "values are freed as usual) or outputs (every value a graph output, kept until the run ends); default: "
        "outputs while all values together are small (at most 64 KiB a node, 4-64 MiB), else profile",
    )  # fmt: skip
    group.add_argument(
        "--optimized", action="store_true",
        help="let onnxruntime optimize the graph (default: optimizations off); implies --method outputs",
    )  # fmt: skip
    group.add_argument("--seed", type=int, default=0, help="seed of the generated input values (default 0)")


def shape_options(args: argparse.Namespace) -> ShapeOptions | None:
    """ShapeOptions from the parsed flags, or None when the command did not opt in."""
    given = bool(args.input or args.optimized or args.timeout or args.max_memory or args.method)
    if not getattr(args, "run_shapes", True):
        if given:
            raise UsageError("--input, --timeout, --max-memory, --method and --optimized need --run-shapes")
        return None
    dims = dim_bindings(args)
    inputs: dict[str, str] = {}
    for name, path in args.input:
        if name in inputs:
            raise UsageError(f"--input {name} given twice")
        inputs[name] = path
    from onnxaudit.shapes.options import ShapeOptions  # a run's only: its dataclasses cost a summary ~2 ms

    options = ShapeOptions(
        dims=dims,
        inputs=inputs,
        timeout=args.timeout or DEFAULT_TIMEOUT,
        max_memory=args.max_memory or DEFAULT_MAX_MEMORY,
        optimized=args.optimized,
        seed=args.seed,
        method=args.method,
    )
    options.run_method  # noqa: B018 - raises UsageError for --method profile --optimized, before anything runs
    return options


def dim_bindings(args: argparse.Namespace) -> dict[str, int]:
    """--dim NAME=VALUE as a dict: the shape run's bindings, and (without a run) the cost's."""
    dims: dict[str, int] = {}
    for name, value in args.dim:
        if dims.get(name, value) != value:
            raise UsageError(f"--dim {name} given twice with different values ({dims[name]} and {value})")
        dims[name] = value
    return dims


def shapes_exit(report: Report) -> int:
    """The exit code a shape check gives; a run that did not happen says why on stderr, in one line."""
    check = report.shape_check
    if check is None:
        return 0
    if check.exit_code == 2:
        print(f"onnxaudit: {escape(report.model)}: {escape(check.message)}", file=sys.stderr)
    return check.exit_code


def add_shapes(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "shapes",
        help="run the model once in onnxruntime and confirm every intermediate shape",
        description=(
            "Run MODEL once in onnxruntime (CPU, in a child process under --timeout and --max-memory), observe "
            "every main-graph value's actual shape (from onnxruntime's profile, or with --method outputs as graph "
            "outputs), and compare it with the declared one and with onnx's strict shape inference. "
            "Exit 0 all confirmed, 1 mismatch, 2 unusable input or run refused."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="path to a .onnx file")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--wide", action="store_true", help=f"text: every line whole (default: fit {WIDTH} columns, names shortened)"
    )
    parser.add_argument(
        "--convention", choices=sorted(CONVENTIONS), default="keras", help="how the counts below the table split"
    )
    add_run_options(parser, opt_in=False)
    add_max_nodes(parser)


def run_shapes(args: argparse.Namespace) -> int:
    options = shape_options(args)
    assert options is not None  # `shapes` always runs
    # the child starts now: it imports onnxruntime while this process reads and counts the model
    with options.start_child() as child:
        options.prestarted = child
        report = audit(args.model, convention=args.convention, shapes=options, max_nodes=args.max_nodes)
    if args.format == "json":
        write_json(report, sys.stdout)
    else:
        from onnxaudit.render.shapes import render_shapes_text  # the shapes command's only

        sys.stdout.write(render_shapes_text(report, None if args.wide else WIDTH))
    sys.stdout.flush()
    return shapes_exit(report)
