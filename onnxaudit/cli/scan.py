"""The `scan` subcommand's parser and runner, registered in cli.main.COMMANDS."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from onnxaudit.cli.limits import add_max_nodes
from onnxaudit.count.conventions import CONVENTIONS
from onnxaudit.errors import UsageError
from onnxaudit.io.remote import is_url, list_models
from onnxaudit.render.summary import escape
from onnxaudit.scan.batch import SUFFIX, Progress, Record, find_models, read_listing, scan, summary_table


def add_scan(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "scan",
        help="audit every .onnx file under a folder in parallel (JSON Lines)",
        description=(
            "Audit every .onnx file under DIR (recursively) in parallel processes. stdout: one JSON "
            "object per model, in path order; stderr: a progress bar on a terminal and a summary table. "
            "Exit 0 if every file was audited, 1 if any file could not be, 2 if DIR is unusable."
        ),
    )
    parser.add_argument(
        "directory", metavar="DIR", nargs="?",
        help="folder to search for .onnx files, or a URL prefix (s3://bucket/models/, any fsspec protocol but http)",
    )  # fmt: skip
    parser.add_argument(
        "--list", metavar="FILE", dest="listing",
        help="audit the models FILE names instead, one path or URL a line ('-': stdin); for http(s) models",
    )  # fmt: skip
    parser.add_argument("--jobs", "-j", type=_jobs, default=None, help="worker processes (default: one per CPU)")
    parser.add_argument("--convention", choices=sorted(CONVENTIONS), default="keras")
    parser.add_argument("--quiet", "-q", action="store_true", help="no summary table on stderr")
    add_max_nodes(parser)


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError("must be between 1 and 256")
    return value


def _models(args: argparse.Namespace, records: list[Record]) -> tuple[list[str], str]:
    """The models to audit, in path order, and the root their names are shown under."""
    if (args.directory is None) == (args.listing is None):
        raise UsageError("scan takes a DIR (a folder or URL prefix) or --list FILE, one of the two")
    if args.listing is not None:
        return read_listing(args.listing), ""
    if is_url(args.directory):
        return list_models(args.directory, SUFFIX), args.directory
    root = Path(args.directory)
    return [str(p) for p in find_models(root, records)], str(root)


def run_scan(args: argparse.Namespace) -> int:
    if args.convention not in CONVENTIONS:
        raise UsageError(f"unknown convention {args.convention!r}")
    records: list[Record] = []
    paths, root = _models(args, records)
    for record in records:  # folders that could not be read: reported first, and the exit code says so
        sys.stdout.write(record.to_json(args.convention) + "\n")
    jobs = args.jobs or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    progress = Progress(len(paths), sys.stderr)
    try:
        for record in scan(paths, args.convention, jobs, progress.update, args.max_nodes):
            records.append(record)
            sys.stdout.write(record.to_json(args.convention) + "\n")
            sys.stdout.flush()
    finally:
        progress.close()
    if not args.quiet:
        if records:
            sys.stderr.write(summary_table(records, root))
        else:
            sys.stderr.write(f"no {SUFFIX} files under {escape(root or args.listing)}\n")
    return 1 if any(r.status != "ok" for r in records) else 0
