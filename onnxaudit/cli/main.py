"""Command line: `onnxaudit summary MODEL ...`. Exit 0 ok, 1 findings, 2 unusable input or usage."""

from __future__ import annotations

import argparse
import atexit
import codecs
import gc
import io
import os
import sys
import threading
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path
from typing import Any, NoReturn

from onnxaudit._version import __version__
from onnxaudit.api import GROUPINGS, Convention, audit, gc_paused
from onnxaudit.cli.limits import add_max_nodes
from onnxaudit.cli.shapes import add_run_options, add_shapes, dim_bindings, run_shapes, shape_options, shapes_exit
from onnxaudit.count.conventions import CONVENTIONS
from onnxaudit.errors import AuditError, UsageError
from onnxaudit.render.layout import WIDTH
from onnxaudit.render.summary import (
    SUMMARY_FORMATS,
    escape,
    render_markdown,
    render_verification,
    render_verification_json,
    write_json,
    write_text,
)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def add_summary(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    summary = sub.add_parser(
        "summary",
        help="Keras/torchinfo-style table: params per layer, trainable vs non-trainable",
        description="Print a parameter summary of MODEL (counts come from dims; weights are never read).",
    )
    summary.add_argument("model", metavar="MODEL", help="path to a .onnx file")
    summary.add_argument(
        "--convention",
        choices=sorted(CONVENTIONS),
        default="keras",
        help="keras: trainable/non-trainable; pytorch: parameters/buffers (default keras)",
    )
    summary.add_argument("--format", choices=SUMMARY_FORMATS, default="text")
    summary.add_argument("--explain", action="store_true", help="show the arithmetic behind each row")
    summary.add_argument(
        "--wide",
        action="store_true",
        help=f"text: every line whole (default: fit {WIDTH} columns, long names shortened)",
    )
    summary.add_argument(
        "--depth", type=_positive_int, default=None, help="roll layers up to N levels of the module hierarchy"
    )
    summary.add_argument("--by", choices=GROUPINGS, default="layer", help="what one row stands for")
    summary.add_argument(
        "--choose-dims", action="store_true",
        help="size every free input dim --dim leaves (from the graph: batch 1, a spatial size the convs accept, "
        "a short sequence; each printed with its reason) so the MACs and memory figures are numbers",
    )  # fmt: skip
    add_run_options(summary, opt_in=True)
    add_max_nodes(summary)


@gc_paused  # through rendering: a collection over the report's objects would cost more than writing it
def run_summary(args: argparse.Namespace) -> int:
    options = shape_options(args)
    dims = dim_bindings(args)
    report = audit(
        args.model,
        convention=args.convention,
        by=args.by,
        depth=args.depth,
        shapes=options,
        dims=dims,
        choose_dims=args.choose_dims,
        max_nodes=args.max_nodes,
        for_format=args.format,  # what it never shows is left out (verify's evidence, text's unprinted consumers)
        keep=_UNTIL_EXIT.get("kept"),  # the process ends with os._exit: nothing the run built need be freed
    )
    if args.format == "json":
        write_json(report, sys.stdout)  # in pieces: 55 MB at 200k nodes is never held whole
    elif args.format == "html":
        from onnxaudit.render.html import render_html  # only this format needs it

        sys.stdout.write(render_html(report, explain=args.explain))
    elif args.format == "markdown":
        sys.stdout.write(render_markdown(report, explain=args.explain))
    else:
        write_text(report, sys.stdout, explain=args.explain, width=None if args.wide else WIDTH)  # in pieces
    sys.stdout.flush()
    kept = _UNTIL_EXIT.get("kept")
    if kept is not None:
        kept.append(report)
        gc.freeze()  # and out of every later collection: once the pause ends, one would walk all of them
    return shapes_exit(report)


def add_verify(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify = sub.add_parser(
        "verify",
        help="check the file against the counts a framework reported; explain any difference",
        description="Compare MODEL with expected counts. Exit 0 consistent, 1 mismatch, 2 unusable input.",
    )
    verify.add_argument("model", metavar="MODEL", help="path to a .onnx file")
    verify.add_argument("--expect", metavar="total=N,trainable=N,non_trainable=N", help="any subset of the three")
    verify.add_argument("--keras-summary", metavar="FILE", help="the text model.summary() printed (Keras 2 or 3)")
    verify.add_argument("--torch-counts", metavar="FILE", help="a counts JSON written by a few lines of PyTorch")
    verify.add_argument("--convention", choices=sorted(CONVENTIONS), default=None)
    verify.add_argument("--format", choices=("text", "json"), default="text")
    verify.add_argument(
        "--wide", action="store_true", help=f"text: every line whole (default: wrapped to {WIDTH} columns)"
    )
    add_max_nodes(verify)


def run_verify(args: argparse.Namespace) -> int:
    from onnxaudit.verify.expectations import parse_expect, parse_keras_summary, parse_torch_counts  # verify's only
    from onnxaudit.verify.verify import verify

    expectations = []
    if args.expect:
        expectations.append(parse_expect(args.expect))
    if args.keras_summary:
        expectations.append(parse_keras_summary(Path(args.keras_summary)))
    if args.torch_counts:
        expectations.append(parse_torch_counts(Path(args.torch_counts)))
    if not expectations:
        raise UsageError("verify needs --expect, --keras-summary or --torch-counts")
    convention: Convention = args.convention or ("pytorch" if args.torch_counts and not args.keras_summary else "keras")
    report = audit(args.model, convention=convention, max_nodes=args.max_nodes)
    results = [verify(report, expectation) for expectation in expectations]
    for result in results:
        if args.format == "json":
            sys.stdout.write(render_verification_json(result))
        else:
            sys.stdout.write(render_verification(result, None if args.wide else WIDTH))
    return 0 if all(r.consistent for r in results) else 1


def _lazy(module: str, name: str) -> Callable[[Any], Any]:
    """`module.name`, imported when first called: `summary` never loads check's or scan's modules."""

    def call(arg: Any) -> Any:
        return getattr(import_module(module), name)(arg)

    return call


# One entry per subcommand: (adds its parser, runs it and returns the exit code).
Command = tuple[
    Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None], Callable[[argparse.Namespace], int]
]
COMMANDS: dict[str, Command] = {
    "summary": (add_summary, run_summary),
    "verify": (add_verify, run_verify),
    "shapes": (add_shapes, run_shapes),
    "scan": (_lazy("onnxaudit.cli.scan", "add_scan"), _lazy("onnxaudit.cli.scan", "run_scan")),
    "check": (_lazy("onnxaudit.cli.check", "add_check"), _lazy("onnxaudit.cli.check", "run_check")),
    "diff": (_lazy("onnxaudit.cli.diff", "add_diff"), _lazy("onnxaudit.cli.diff", "run_diff")),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (`command`) the one subcommand a command line names: parsing it needs no other."""
    parser = argparse.ArgumentParser(
        prog="onnxaudit",
        description="Count, classify and explain every parameter of an ONNX model.",
    )
    parser.add_argument("--version", action="version", version=f"onnxaudit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_parser, _) in COMMANDS.items():
        if command is None or name == command:
            add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(words[0] if words and words[0] in COMMANDS else None).parse_args(words)
    for stream in (sys.stdout, sys.stderr):
        _escape_what_cannot_be_encoded(stream)
    if sys.stdout is None:  # started with stdout closed (`>&-`): every command writes there, so say so once
        print(f"onnxaudit: {_where(args)}: cannot write the output: standard output is closed", file=sys.stderr)
        return 2
    try:
        return COMMANDS[args.command][1](args)
    except AuditError as exc:
        print(f"onnxaudit: {escape(exc)}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except (MemoryError, RecursionError) as exc:
        print(f"onnxaudit: {_where(args)}: {type(exc).__name__} while reading", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug must still end in one line, never a traceback on a user's terminal
        print(f"onnxaudit: {_where(args)}: internal error {type(exc).__name__}: {escape(exc)}", file=sys.stderr)
        return 2


def _escape_what_cannot_be_encoded(stream: object) -> None:
    """A stream that cannot encode every character (PYTHONIOENCODING=ascii, a latin-1 locale) gets the ones it cannot
    as backslash escapes: the tables' own '·' and '…' made every summary an internal error UnicodeEncodeError."""
    if isinstance(stream, io.TextIOWrapper) and codecs.lookup(stream.encoding).name not in ("utf-8", "utf-8-sig"):
        stream.reconfigure(errors="backslashreplace")


# entry()'s: what a command built and would free on returning ("kept"), held for the process to end with it
_UNTIL_EXIT: dict[str, list[object]] = {}


def entry() -> NoReturn:
    """The console script and `python -m onnxaudit`: main(), then the process ends (see _end_now). What the
    summary built is kept in _UNTIL_EXIT meanwhile: freeing it object by object on the way out of audit() and
    run_summary costs ~0.2 s CPU at 200k nodes, which _end_now's os._exit never pays (the ordinary exit frees
    it as before, only later). main() called in a process that goes on (tests, a caller) keeps nothing."""
    _UNTIL_EXIT["kept"] = []
    code = main()
    _end_now(code)
    _UNTIL_EXIT.clear()  # the ordinary exit: freed here, as they were before
    sys.exit(code)


def _end_now(code: int) -> None:
    """End the process without tearing the interpreter down: freeing every module and object of the run one by
    one is ~8% of a summary's CPU time (0.02 s of a 1.5 GB model's 0.25 s; more at 200k nodes) and changes
    nothing the user sees. Only when that holds: stdout and stderr are the process's own (a caller that redirected
    them runs us inside its own process and gets SystemExit), the atexit handlers (coverage's, logging's) run
    first, no other thread is alive (Python would wait for it), and both streams flush cleanly; otherwise the
    ordinary exit, which reports a failed flush as before."""
    run_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython's; elsewhere the ordinary exit
    own = sys.stdout is sys.__stdout__ and sys.stderr is sys.__stderr__
    if not own or run_handlers is None or threading.active_count() != 1 or not _flushed():
        return
    run_handlers()
    if _flushed():  # a handler may have written
        os._exit(code)


def _flushed() -> bool:
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):  # a closed pipe, a closed stream: the ordinary exit says so
        return False
    return True


def _where(args: argparse.Namespace) -> str:
    """What a failure the command did not expect is about: its model (check's models, diff's OLD and NEW, scan's
    folder or list), escaped, or the command's name when it names none."""
    found = [getattr(args, name, None) for name in ("model", "old", "new", "directory", "listing")]
    paths = [p for value in found for p in (value if isinstance(value, list) else [value]) if p]
    return " and ".join(escape(p) for p in paths) or f"{args.command}"
