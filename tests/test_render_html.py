"""`summary --format html` in a real headless Chromium: it loads with no console error, draws the charts
(a screenshot that is not blank, with the trainable colour in it), and every chart figure equals the JSON report."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from builders import MODELS, init, linear, model, node, save, value

from onnxaudit.cli.main import main
from onnxaudit.render.html import COLOURS

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")
BROWSER = next((found for name in BROWSERS if (found := shutil.which(name))), None)
needs_browser = pytest.mark.skipif(
    BROWSER is None, reason="no headless Chromium (.ci/run installs Debian's chromium-headless-shell)"
)
CASES = [
    (MODELS / "torch" / "seed_cnn__legacy_nofold.onnx", ()),  # MACs per unit of the free batch dim
    (MODELS / "keras" / "seed_cnn__tf2onnx_op17.onnx", ()),  # unclassified constants: a third bucket in the bars
    (MODELS / "torch" / "seed_cnn__legacy_nofold.onnx", ("--dim", "batch=3")),  # MACs as numbers
]


def _summary(path: Path, fmt: str, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["summary", str(path), "--format", fmt, *args]) == 0
    return capsys.readouterr().out


def _browser(*args: str) -> subprocess.CompletedProcess[str]:
    assert BROWSER is not None
    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


class _Elements(HTMLParser):
    """Every element's attributes, by tag, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {k: v or "" for k, v in attrs}))


def _elements(page: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Elements()
    parser.feed(page)
    return parser.found


def _png_pixels(data: bytes) -> set[tuple[int, ...]]:
    """The distinct colours of an 8-bit RGB/RGBA PNG (what Chromium writes), decoded by the spec's filters."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride = zlib.decompress(idat), width * channels
    previous, colours = bytearray(stride), set()
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        colours.update(tuple(line[i : i + 3]) for i in range(0, stride, channels))
        previous = line
    return colours


def test_page_is_self_contained_and_escapes_names(tmp_path, capsys):
    hostile = "<img onerror=alert(1)>\x1b[31m"
    m = model(
        [node("MatMul", ["x", "w"], ["y"], name=hostile)],
        [value("x", ["N", 4])],
        [value("y", ["N", 3])],
        [init("w", [4, 3])],
    )
    page = _summary(save(m, tmp_path / "hostile.onnx"), "html", capsys)
    assert "<img" not in page and "\x1b" not in page
    assert "&lt;img onerror=alert(1)&gt;\\x1b[31m" in page
    # nothing is fetched: no src/href attribute anywhere, and the policy forbids it
    assert not [a for _, attrs in _elements(page) for a in attrs if a in ("src", "href")]
    assert "default-src 'none'" in page


@needs_browser
@pytest.mark.parametrize(("path", "args"), CASES, ids=lambda c: c.name if isinstance(c, Path) else " ".join(c))
def test_chromium_loads_the_page_and_its_charts_equal_the_json(path, args, tmp_path, capsys):
    report = json.loads(_summary(path, "json", capsys, *args))
    page = tmp_path / "report.html"
    page.write_text(_summary(path, "html", capsys, *args), encoding="utf-8")

    done = _browser("--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    elements = _elements(done.stdout)
    body = next(attrs for tag, attrs in elements if tag == "body")
    assert body.get("data-ready") == "1" and "data-error" not in body  # the page's script ran to its end

    rows = {r["name"]: r for r in report["rows"]}
    bars = [attrs for tag, attrs in elements if tag == "g" and attrs.get("class") == "bar" and "data-params" in attrs]
    layer_bars = [b for b in bars if b["data-layers"] == "1"]
    assert layer_bars
    for bar in layer_bars:  # a single layer's bar is its row
        row = rows[bar["data-name"]]
        for key in ("params", "trainable", "non_trainable", "unclassified"):
            assert int(bar["data-" + key.replace("_", "-")]) == row[key], (bar["data-name"], key)
    totals = report["totals"]
    split = next(b for b in bars if b["data-name"] == "all parameters")
    assert [int(split[k]) for k in ("data-params", "data-trainable", "data-non-trainable", "data-unclassified")] == [
        totals["total"],
        totals["trainable"],
        totals["non_trainable"],
        totals["unclassified"],
    ]
    # the largest-layers chart holds every parameter of the table once (the rest in one bar)
    chart = re.search(r'<svg id="layers-chart".*?</svg>', done.stdout, re.S)
    assert chart is not None
    in_chart = [attrs for _, attrs in _elements(chart.group()) if attrs.get("class") == "bar"]
    assert sum(int(b["data-params"]) for b in in_chart) == sum(r["params"] for r in report["rows"])
    dtypes = {
        a["data-dtype"]: (int(a["data-params"]), int(a["data-bytes"]))
        for t, a in elements
        if t == "tr" and "data-dtype" in a
    }
    assert dtypes == {d: (v["params"], v["bytes"]) for d, v in totals["by_dtype"].items()}
    _macs_chart_equals_the_json(done.stdout, report, bound=bool(args))


def _macs_chart_equals_the_json(page: str, report: dict, bound: bool) -> None:
    """Each layer's MACs bar is its row's figure (per unit of the free dim, or a number once bound); the
    chart sums to the model's MACs."""
    unit = next(a for _, a in _elements(page) if a.get("id") == "macs-unit")["data-unit"]
    assert unit == ("" if bound else next(iter(report["cost"]["macs"]["terms"])))
    chart = re.search(r'<svg id="macs-chart".*?</svg>', page, re.S)
    assert chart is not None
    bars = [attrs for _, attrs in _elements(chart.group()) if attrs.get("class") == "bar"]
    rows = {r["name"]: r for r in report["rows"]}
    assert [b for b in bars if b["data-layers"] == "1"]
    for bar in bars:
        assert bar["data-unit"] == unit
        if bar["data-layers"] == "1":
            macs = rows[bar["data-name"]]["macs"]
            assert int(bar["data-macs"]) == (macs["value"] if bound else macs["terms"][unit]), bar["data-name"]
    assert sum(int(b["data-macs"]) for b in bars) == report["cost"]["macs"]["terms"][unit]


@needs_browser
def test_screenshot_shows_the_charts(tmp_path, capsys):
    page = tmp_path / "report.html"
    page.write_text(_summary(CASES[0][0], "html", capsys), encoding="utf-8")
    shot = tmp_path / "shot.png"
    done = _browser("--window-size=1000,900", f"--screenshot={shot}", page.as_uri())
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    colours = _png_pixels(shot.read_bytes())
    assert len(colours) > 20  # text, cards and bars: not a blank page
    for key in ("trainable", "macs"):  # a parameters bar and a MACs bar were drawn
        assert tuple(int(COLOURS[key][i : i + 2], 16) for i in (1, 3, 5)) in colours, key


def test_macs_in_different_free_dims_are_not_charted_on_one_scale(tmp_path, capsys):
    m = model(
        [node("MatMul", ["x", "w"], ["y"], name="fc"), node("MatMul", ["s", "v"], ["t"], name="seq_fc")],
        [value("x", ["N", 4]), value("s", ["N", "S", 4])],
        [value("y", ["N", 3]), value("t", ["N", "S", 2])],
        [init("w", [4, 3]), init("v", [4, 2])],
    )
    path = save(m, tmp_path / "two_dims.onnx")
    report = json.loads(_summary(path, "json", capsys))
    assert {r["name"]: r["macs"]["terms"] for r in report["rows"]} == {"fc": {"N": 4 * 3}, "seq_fc": {"N*S": 4 * 2}}
    page = _summary(path, "html", capsys)
    assert 'id="macs-chart"' not in page and "MACs not charted" in page and "(N, N*S)" in page
    bound = _summary(path, "html", capsys, "--dim", "N=2", "--dim", "S=5")  # numbers: one scale again
    macs = {a["data-name"]: int(a["data-macs"]) for _, a in _elements(bound) if "data-macs" in a}
    assert macs == {"fc": 2 * 4 * 3, "seq_fc": 2 * 5 * 4 * 2}


# ---------------------------------------------------------------- diff --format html

DIFF_CASES = [
    ("torch/resnet_tiny__legacy_nofold", "torch/resnet_tiny__legacy_fold"),  # BNs folded: params by bucket, modules
    ("torch/resnet_tiny__legacy_nofold", "ort/resnet_tiny__legacy_nofold__qdq_static"),  # bytes and dtypes
]


def _diff(old: Path, new: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["diff", str(old), str(new), "--format", fmt]) in (0, 1)
    return capsys.readouterr().out


def _wider(tmp_path: Path) -> tuple[Path, Path]:
    """fc 4 -> 3, then 4 -> 5: 8 more parameters and 8 more MACs per row of the batch."""
    old = save(linear(init("fc.weight", [4, 3])), tmp_path / "old.onnx")
    return old, save(linear(init("fc.weight", [4, 5])), tmp_path / "new.onnx")


def _bars(page: str, chart_id: str) -> list[dict[str, str]]:
    chart = re.search(rf'<svg id="{chart_id}".*?</svg>', page, re.S)
    assert chart is not None, chart_id
    return [attrs for _, attrs in _elements(chart.group()) if attrs.get("class") == "bar"]


def _gain(delta: dict) -> int:
    return (delta["new"] or 0) - (delta["old"] or 0)


def _diff_charts_equal_the_json(page: str, report: dict) -> None:
    stored = report["totals"]["stored"]
    rows = [a for t, a in _elements(page) if t == "tr" and "data-key" in a]
    assert {r["data-key"]: (int(r["data-old"]), int(r["data-new"])) for r in rows} == {
        k: (stored[k]["old"], stored[k]["new"]) for k in ("total", "trainable", "non_trainable", "unclassified")
    }
    layers = {la["new"] or la["old"]: la for la in report["layers"]}
    params = _bars(page, "params-changes") if 'id="params-changes"' in page else []
    for bar in params:
        if bar["data-layers"] == "1":
            la = layers[bar["data-name"]]
            figures = {k: _gain(la[k]) for k in ("params", "trainable", "non_trainable")}
            figures["unclassified"] = figures["params"] - figures["trainable"] - figures["non_trainable"]
            assert {k: int(bar["data-" + k.replace("_", "-")]) for k in figures} == figures, bar["data-name"]
    assert sum(int(b["data-params"]) for b in params) == stored["total"]["delta"]  # every change, once
    sizes = _bars(page, "bytes-changes") if 'id="bytes-changes"' in page else []
    for bar in sizes:
        if bar["data-layers"] == "1":
            assert int(bar["data-bytes"]) == _gain(layers[bar["data-name"]]["bytes"]), bar["data-name"]
    assert sum(int(b["data-bytes"]) for b in sizes) == stored["total_bytes"]["delta"]
    unit = next(a for _, a in _elements(page) if a.get("id") == "macs-unit")["data-unit"]
    for bar in _bars(page, "macs-changes") if 'id="macs-changes"' in page else []:
        assert (
            bar["data-layers"] != "1" or int(bar["data-macs"]) == layers[bar["data-name"]]["macs"]["delta_terms"][unit]
        )
    split = {b["data-name"]: b for b in _bars(page, "split")}
    for side in ("old", "new"):
        bar = split[side.upper()]
        assert [int(bar["data-" + k.replace("_", "-")]) for k in ("trainable", "non_trainable", "unclassified")] == [
            stored[k][side] for k in ("trainable", "non_trainable", "unclassified")
        ]
    dtypes = {a["data-dtype"]: (int(a["data-old-params"]), int(a["data-new-params"])) for _, a in _elements(page)
              if "data-old-params" in a}  # fmt: skip
    by_dtype = report["totals"]["by_dtype"]
    assert dtypes == {d: (v["params"]["old"] or 0, v["params"]["new"] or 0) for d, v in by_dtype.items()}


@needs_browser
@pytest.mark.parametrize("case", [*DIFF_CASES, "wider"], ids=lambda c: c if isinstance(c, str) else "-vs-".join(c))
def test_chromium_loads_the_diff_page_and_its_charts_equal_the_json(case, tmp_path, capsys):
    old, new = _wider(tmp_path) if case == "wider" else (MODELS / f"{case[0]}.onnx", MODELS / f"{case[1]}.onnx")
    report = json.loads(_diff(old, new, "json", capsys))
    page = tmp_path / "diff.html"
    page.write_text(_diff(old, new, "html", capsys), encoding="utf-8")
    done = _browser("--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    assert not [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    body = next(attrs for tag, attrs in _elements(done.stdout) if tag == "body")
    assert body.get("data-ready") == "1" and "data-error" not in body
    _diff_charts_equal_the_json(done.stdout, report)
    if case == "wider":  # a MACs change: 4x5 - 4x3 per row of the free batch dim N
        macs = _bars(done.stdout, "macs-changes")
        assert [(b["data-name"], int(b["data-macs"]), b["data-unit"]) for b in macs] == [("fc", 4 * 5 - 4 * 3, "N")]
        assert [int(b["data-params"]) for b in _bars(done.stdout, "params-changes")] == [4 * 5 - 4 * 3]


def test_diff_page_is_self_contained_and_escapes_names(tmp_path, capsys):
    old = save(linear(init("fc.weight", [4, 3])), tmp_path / "old.onnx")
    hostile = linear(init("w", [4, 5]))
    hostile.graph.node[0].name = "<img onerror=alert(1)>\x1b[31m"
    page = _diff(old, save(hostile, tmp_path / "new.onnx"), "html", capsys)
    assert "<img" not in page and "\x1b" not in page and "&lt;img onerror=alert(1)&gt;\\x1b[31m" in page
    assert not [a for _, attrs in _elements(page) for a in attrs if a in ("src", "href")]
    assert "default-src 'none'" in page and not re.search(r"https?://(?!www\.w3\.org/2000/svg\b)", page)


@needs_browser
def test_diff_screenshot_shows_the_charts(tmp_path, capsys):
    page = tmp_path / "diff.html"
    page.write_text(_diff(*(MODELS / f"{name}.onnx" for name in DIFF_CASES[0]), "html", capsys), encoding="utf-8")
    shot = tmp_path / "shot.png"
    done = _browser("--window-size=1000,1400", f"--screenshot={shot}", page.as_uri())
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    colours = _png_pixels(shot.read_bytes())
    assert len(colours) > 20
    for key in ("trainable", "non_trainable"):  # a folded BN: both buckets drawn
        assert tuple(int(COLOURS[key][i : i + 2], 16) for i in (1, 3, 5)) in colours, key
