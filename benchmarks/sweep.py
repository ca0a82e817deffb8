"""The sweep of issue #17: every bomb of bombs.py through every command, each run alone and measured.

    python benchmarks/sweep.py OUT_DIR [NAME...] [--commands summary,check,...] [--json FILE] [--resume]

Builds the bombs into OUT_DIR (kept when already there with --reuse), then runs summary, check, verify
(--expect total=1), diff (the file against itself) and scan (-j 1 -q over a folder holding only the file) on
each, one at a time, as

    /usr/bin/time -f '%x %e %U %S %M' timeout -s KILL 600 nice -n 10 onnxaudit summary FILE

with the address space bounded (ulimit -v 6 GiB); run the script itself without nice (a nice of 10 on top of
the runs' own makes them 19, and on a busy machine a few CPU seconds then take minutes of wall time). Prints
one Markdown table, a cell a run: exit code · CPU seconds (user + sys, children included: what a quiet
machine's wall time comes close to) · peak RSS in MiB, with a cell over a target (10 s CPU, 1 GiB) in bold,
and below it every run that broke a rule of the CLI: an exit code other than 0, 1, 2; an exit 2 whose stderr
is not one line naming the file; anything on stderr otherwise; a raw control character or invalid UTF-8 on
stdout or stderr. --json writes one JSON object a run (--resume skips the runs a previous --json holds).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bombs import BOMBS  # noqa: E402
from hostile import raw_controls  # noqa: E402

COMMANDS = ("summary", "check", "verify", "diff", "scan")
CPU_TARGET = 10.0  # seconds
MEMORY_TARGET = 1024.0  # MiB
ADDRESS_SPACE = 6 << 30  # a run past this fails instead of taking the machine's memory
TIMEOUT = 600  # seconds of wall time, then SIGKILL (--timeout): a safety bound, not a target


@dataclass
class Run:
    bomb: str
    command: str
    code: int | None  # None: killed at the timeout
    wall: float
    cpu: float
    peak_mib: float
    stderr: str
    problems: list[str]

    def cell(self) -> str:
        code = "killed" if self.code is None else str(self.code)
        text = f"{code} · {self.cpu:.2f} s · {self.peak_mib:,.0f}"
        over = self.code is None or self.cpu >= CPU_TARGET or self.peak_mib >= MEMORY_TARGET
        return f"**{text}**" if over else text


def argv_of(command: str, path: Path, scan_dir: Path, tool: Sequence[str]) -> list[str]:
    if command == "verify":
        return [*tool, "verify", str(path), "--expect", "total=1"]
    if command == "diff":
        return [*tool, "diff", str(path), str(path)]
    if command == "scan":
        return [*tool, "scan", str(scan_dir), "-j", "1", "-q"]
    return [*tool, command, str(path)]


def _bound() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def problems_of(code: int | None, out: bytes, err: bytes, path: Path, command: str) -> list[str]:
    """What in one run breaks the CLI's rules for bad input (empty: none)."""
    found = []
    lines = err.decode("utf-8", "backslashreplace").splitlines()
    if code not in (0, 1, 2):
        found.append(f"exit {code}")
    elif code == 2 and (len(lines) != 1 or str(path.name) not in lines[0]):
        found.append(f"exit 2 with {len(lines)} stderr lines, not one naming the file")
    elif code != 2 and lines:
        found.append(f"{len(lines)} stderr lines at exit {code}")
    if command == "scan" and code == 1 and path.name.encode() not in out:
        found.append("scan's exit 1 without a record naming the file")
    controls = raw_controls(out + err)
    if controls:
        found.append(f"raw controls in the output: {', '.join(repr(c) for c in controls)}")
    return found


def measure(bomb: str, command: str, path: Path, scan_dir: Path, tool: Sequence[str], nice: int, timeout: int) -> Run:
    with tempfile.TemporaryDirectory(prefix="sweep-") as tmp:
        record, out_file, err_file = (Path(tmp) / name for name in ("time", "out", "err"))
        argv = ["/usr/bin/time", "-f", "%x %e %U %S %M", "-o", str(record), "timeout", "-s", "KILL", str(timeout)]
        argv += ["nice", "-n", str(nice), *argv_of(command, path, scan_dir, tool)]
        with out_file.open("wb") as out, err_file.open("wb") as err:
            subprocess.run(argv, stdout=out, stderr=err, preexec_fn=_bound, check=False)
        # the last line is the format's; "Command exited with non-zero status N" may come before it
        fields = record.read_text().split("\n")[-2].split()
        code: int | None = int(fields[0])
        if code == 137:  # timeout's SIGKILL
            code = None
        out_bytes, err_bytes = out_file.read_bytes(), err_file.read_bytes()
    wall, user, system, peak_kib = float(fields[1]), float(fields[2]), float(fields[3]), int(fields[4])
    return Run(
        bomb,
        command,
        code,
        wall,
        round(user + system, 2),
        round(peak_kib / 1024, 1),
        err_bytes.decode("utf-8", "backslashreplace")[:500],
        problems_of(code, out_bytes, err_bytes, path, command),
    )


def table(runs: list[Run], sizes: dict[str, int], commands: Sequence[str]) -> str:
    cells = {(run.bomb, run.command): run.cell() for run in runs}
    lines = ["| bomb (MB) | " + " | ".join(commands) + " |", "|---|" + "---|" * len(commands)]
    for bomb in sorted({run.bomb for run in runs}):
        row = [cells.get((bomb, command), "") for command in commands]
        lines.append(f"| {bomb} ({sizes.get(bomb, 0) / 1e6:.1f}) | " + " | ".join(row) + " |")
    return "\n".join(lines)


def build(out: Path, names: Sequence[str], reuse: bool) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in names:
        path = out / f"{name}.onnx"
        if not (reuse and path.exists()):
            path.write_bytes(BOMBS[name]())
        paths[name] = path
    return paths


def scan_folder(out: Path, name: str, path: Path) -> Path:
    """A folder holding only `path` (a hard link, else a copy), for scan."""
    folder = out / "scan" / name
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if not target.exists():
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("out", metavar="OUT_DIR", type=Path, help="folder for the bombs (NAME.onnx) and scan folders")
    parser.add_argument("names", metavar="NAME", nargs="*", help="bombs to run (default: all)")
    parser.add_argument("--commands", default=",".join(COMMANDS), help="comma-separated (default: all five)")
    parser.add_argument("--json", type=Path, help="append one JSON object a run to this file")
    parser.add_argument("--resume", action="store_true", help="skip the runs --json already holds")
    parser.add_argument("--reuse", action="store_true", help="keep the bomb files already in OUT_DIR")
    parser.add_argument("--nice", type=int, default=10, help="niceness of each run (default 10)")
    parser.add_argument("--tool", default="onnxaudit", help="the command to run (default: onnxaudit on PATH)")
    parser.add_argument("--timeout", type=int, default=TIMEOUT, help=f"wall seconds a run may take (default {TIMEOUT})")
    args = parser.parse_args()
    commands = [c for c in args.commands.split(",") if c]
    unknown = [n for n in args.names if n not in BOMBS] + [c for c in commands if c not in COMMANDS]
    if unknown:
        parser.error(f"unknown bomb or command: {', '.join(unknown)}")
    names = args.names or sorted(BOMBS)
    done: list[Run] = []
    if args.resume and args.json and args.json.exists():
        done = [Run(**json.loads(line)) for line in args.json.read_text().splitlines() if line.strip()]
    seen = {(run.bomb, run.command) for run in done}
    paths = build(args.out, names, args.reuse)
    sizes = {name: path.stat().st_size for name, path in paths.items()}
    tool = args.tool.split()
    load_before = os.getloadavg()
    started = time.monotonic()
    runs = [run for run in done if run.bomb in paths and run.command in commands]
    for name in names:
        folder = scan_folder(args.out, name, paths[name])
        for command in commands:
            if (name, command) in seen:
                continue
            run = measure(name, command, paths[name], folder, tool, args.nice, args.timeout)
            runs.append(run)
            print(f"{name} {command}: {run.cell()} {'; '.join(run.problems)}", file=sys.stderr, flush=True)
            if args.json:
                with args.json.open("a") as f:
                    f.write(json.dumps(asdict(run)) + "\n")
    load_after = os.getloadavg()
    print(table(runs, sizes, commands))
    over = [r for r in runs if r.code is None or r.cpu >= CPU_TARGET or r.peak_mib >= MEMORY_TARGET]
    broken = [r for r in runs if r.problems]
    print(
        f"\n{len(runs)} runs of {len(paths)} files in {time.monotonic() - started:.0f} s (load"
        f" {load_before[0]:.1f} -> {load_after[0]:.1f}); over a target ({CPU_TARGET:.0f} s CPU,"
        f" {MEMORY_TARGET:,.0f} MiB): {', '.join(f'{r.bomb} {r.command}' for r in over) or 'none'}"
    )
    for run in broken:
        print(f"- {run.bomb} {run.command}: {'; '.join(run.problems)}")
    if not broken:
        print("Every run: exit 0, 1 or 2; an exit 2 one stderr line naming the file; no other stderr; no raw control.")


if __name__ == "__main__":
    main()
