"""The `scan` subcommand's parser and runner, registered in cli.main.COMMANDS."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from onnxaudit.cli.limits import add_max_nodes
from onnxaudit.count.conventions import CONVENTIONS
from onnxaudit.errors import UsageError
from onnxaudit.render.summary import escape
from onnxaudit.scan.batch import SUFFIX, Progress, Record, find_models, scan, summary_table


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
    parser.add_argument("directory", metavar="DIR", help="folder to search for .onnx files")
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


def run_scan(args: argparse.Namespace) -> int:
    root = Path(args.directory)
    if args.convention not in CONVENTIONS:
        raise UsageError(f"unknown convention {args.convention!r}")
    records: list[Record] = []
    paths = find_models(root, records)
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
            sys.stderr.write(f"no {SUFFIX} files under {escape(root)}\n")
    return 1 if any(r.status != "ok" for r in records) else 0
