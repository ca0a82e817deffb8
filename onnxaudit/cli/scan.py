"""The `scan` subcommand's parser and runner, registered in cli.main.COMMANDS."""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import ExitStack
from pathlib import Path

from onnxaudit.cli.limits import add_max_nodes
from onnxaudit.count.conventions import CONVENTIONS
from onnxaudit.errors import UsageError
from onnxaudit.io.remote import is_url, list_models
from onnxaudit.render.layout import WIDTH
from onnxaudit.render.summary import escape
from onnxaudit.scan.batch import SUFFIX, Progress, Record, find_models, read_listing, scan, summary_table
from onnxaudit.scan.cluster import CONNECT_TIMEOUT, Cluster, open_cluster


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
    parser.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="hand the files to the workers of an existing Dask scheduler (tcp://host:port); they must see "
        "the same files at the same paths and run the same onnxaudit (pip install 'onnxaudit[cluster]')",
    )
    parser.add_argument(
        "--cluster-timeout",
        metavar="SECONDS",
        type=_seconds,
        default=CONNECT_TIMEOUT,
        help=f"how long to try to reach the scheduler, and to wait for a worker (default {CONNECT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--wide", action="store_true", help=f"summary table: every path whole (default: fit {WIDTH} columns)"
    )
    add_max_nodes(parser)


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError("must be between 1 and 256")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 3600")
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
    if args.cluster is not None and args.jobs is not None:
        raise UsageError("--jobs sets local worker processes; with --cluster the cluster's workers do the work")
    records: list[Record] = []
    paths, root = _models(args, records)
    with ExitStack() as stack:  # with --cluster: connected and checked before the first line is written
        cluster = stack.enter_context(open_cluster(args.cluster, args.cluster_timeout)) if args.cluster else None
        _write(args, root, paths, records, cluster)
    return 1 if any(r.status != "ok" for r in records) else 0


def _write(
    args: argparse.Namespace, root: str, paths: list[str], records: list[Record], cluster: Cluster | None
) -> None:
    """The records on stdout as they come in path order, progress and the summary table on stderr."""
    for record in records:  # folders that could not be read: reported first, and the exit code says so
        sys.stdout.write(record.to_json(args.convention) + "\n")
    progress = Progress(len(paths), sys.stderr)
    try:
        if cluster is not None:
            found = cluster.scan(paths, args.convention, progress.update, args.max_nodes)
        else:
            cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            found = scan(paths, args.convention, args.jobs or cpus, progress.update, args.max_nodes)
        for record in found:
            records.append(record)
            sys.stdout.write(record.to_json(args.convention) + "\n")
            sys.stdout.flush()
    finally:
        progress.close()
    if not args.quiet:
        if records:
            sys.stderr.write(summary_table(records, root, None if args.wide else WIDTH))
        else:
            sys.stderr.write(f"no {SUFFIX} files under {escape(root or args.listing)}\n")
