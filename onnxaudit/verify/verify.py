"""`verify`: is this .onnx file still the model the framework described? Compare, then explain.

Figures are compared with the framework view (counts rebuilt through exporter rewrites). An exact
figure must equal the expectation; an ambiguous one must contain it. On a mismatch the difference is
explained layer by layer when the expectation names layers, and otherwise by the smallest set of
plausible model edits (a bias, a BatchNormalization, a frozen layer) whose arithmetic accounts for it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from onnxaudit.frameworks.figures import ZERO, Figure, FrameworkLayer, FrameworkReport
from onnxaudit.report.build import Report, TensorRow
from onnxaudit.verify.expectations import FIGURES, Expectation

MATCH, WITHIN, MISMATCH = "match", "within range", "mismatch"


@dataclass
class FigureCheck:
    figure: str
    expected: int
    found: Figure
    verdict: str


@dataclass
class LayerCheck:
    name: str
    kind: str
    expected: int | None  # None: the layer is in the file but not in the expectation
    found: Figure | None  # None: expected but not found in the file
    verdict: str
    explain: str = ""


@dataclass
class Verification:
    schema_version: int
    model: str
    source: str
    consistent: bool
    figures: list[FigureCheck]
    layers: list[LayerCheck]
    explanation: list[str]
    notes: list[str] = field(default_factory=list)


def _verdict(expected: int, found: Figure) -> str:
    if found.exact:
        return MATCH if found.lo == expected else MISMATCH
    return WITHIN if found.contains(expected) else MISMATCH


def _found(fw: FrameworkReport, figure: str) -> Figure:
    return {"total": fw.total, "trainable": fw.trainable, "non_trainable": fw.non_trainable}[figure]


def _layer_checks(fw: FrameworkReport, expectation: Expectation, rows: dict[str, TensorRow]) -> list[LayerCheck]:
    by_name = {la.name: la for la in fw.layers}
    checks: list[LayerCheck] = []
    seen: set[str] = set()
    for layer in expectation.layers:
        if layer.params == 0 and layer.name not in by_name:
            continue
        found = by_name.get(layer.name)
        seen.add(layer.name)
        if found is None:
            checks.append(
                LayerCheck(layer.name, layer.kind, layer.params, None, MISMATCH, f"not in the file ({layer.params:,})")
            )
            continue
        verdict = _verdict(layer.params, found.total)
        explain = "" if verdict != MISMATCH else _explain_layer(layer.params, found, rows)
        checks.append(LayerCheck(layer.name, layer.kind, layer.params, found.total, verdict, explain))
    extra = [la for la in fw.layers if la.name not in seen and la.total != ZERO] if expectation.layers else []
    _pair_folded(checks, extra)
    for la in extra:
        # a group whose range starts at 0 (anchors, a normalization's mean and std: constants that may
        # be parameters) agrees with a framework that lists no such module
        if la.total.lo == 0:
            verdict, why = WITHIN, "not expected; may hold no parameters"
        else:
            verdict, why = MISMATCH, "in the file, not expected"
        checks.append(LayerCheck(la.name, la.kind, None, la.total, verdict, why))
    return checks


FOLDED = " (+folded BatchNorm)"


def _pair_folded(checks: list[LayerCheck], extra: list[FrameworkLayer]) -> None:
    """A BatchNorm whose name the fold erased (`conv1 (+folded BatchNorm)`) stands for the expected
    BN module that is missing from the file: pair them in graph order when their numbers agree."""
    missing = [c for c in checks if c.found is None]
    folded = [la for la in extra if la.name.endswith(FOLDED)]
    if not missing or len(missing) != len(folded):
        return
    for check, layer in zip(missing, folded, strict=True):
        check.found = layer.total
        check.verdict = _verdict(check.expected or 0, layer.total)
        check.explain = f"folded into {layer.name.removesuffix(FOLDED)} (paired in graph order)"
        extra.remove(layer)


def _explain_layer(expected: int, found: FrameworkLayer, rows: dict[str, TensorRow]) -> str:
    diff = expected - found.total.lo
    sign = "+" if diff > 0 else "-"
    text = f"expected {expected:,}, file {found.total.text()}: {sign}{abs(diff):,}"
    out = _out_features(found, rows)
    if out and abs(diff) == out:
        return f"{text} = {'a' if diff > 0 else 'no'} bias over {out:,} outputs"
    for edit in _layer_edits(found):
        if edit.trainable + edit.non_trainable == diff:
            return f"{text} = {edit.text}"
    return text


@dataclass(frozen=True)
class Edit:
    """One plausible change to the model, with what it does to the counts."""

    text: str
    trainable: int
    non_trainable: int


def _out_features(layer: FrameworkLayer, rows: dict[str, TensorRow]) -> int | None:
    """Output width of a weight layer, from its weight tensor's dims as the exporter stored them."""
    for name in layer.tensors:
        t = rows.get(name)
        if t is None or t.role != "weight" or not t.dims:
            continue
        consumer = t.consumers[0] if t.consumers else ""
        if " MatMul " in f" {consumer}" and len(t.dims) == 2:
            return t.dims[1]
        return t.dims[0]
    return None


def _layer_edits(layer: FrameworkLayer) -> list[Edit]:
    edits = []
    t = layer.trainable.lo
    if t:
        edits.append(Edit(f"{layer.name} frozen (trainable=False): {t:,} trainable counted non-trainable", -t, t))
    edits.extend(_bn_affine_edits(layer))
    return edits


def _bn_affine_edits(layer: FrameworkLayer) -> list[Edit]:
    """A BN rebuilt with gamma and beta assumed (a folded shift cannot show them): center/scale=False."""
    c = layer.non_trainable.lo // 2
    if layer.kind != "BatchNormalization" or not c or layer.trainable.lo != 2 * c:
        return []
    return [
        Edit(f"{layer.name} with center=False or scale=False (-{c:,}: no beta or no gamma)", -c, 0),
        Edit(f"{layer.name} with center=False, scale=False (-2 x {c:,})", -2 * c, 0),
    ]


def candidate_edits(fw: FrameworkReport, rows: dict[str, TensorRow]) -> list[Edit]:
    """Bias on/off per weight layer, a BatchNormalization over each width the model has, frozen layers."""
    edits: list[Edit] = []
    widths: set[int] = set()
    for layer in fw.layers:
        out = _out_features(layer, rows)
        has_bias = any(rows[n].role == "bias" for n in layer.tensors if n in rows)
        if out:
            widths.add(out)
            if has_bias:
                edits.append(Edit(f"no bias on {layer.name} (-{out:,})", -out, 0))
            elif layer.kind.startswith(("Conv", "Dense", "MatMul", "Gemm")) or "MatMul" in layer.kind:
                edits.append(Edit(f"a bias on {layer.name} (+{out:,})", out, 0))
        for name in layer.tensors:
            t = rows.get(name)
            if t is not None and t.role == "weight" and t.dims:
                widths.update(d for d in t.dims if d > 1)
        if layer.kind in ("BatchNormalization", "BatchNorm") and layer.non_trainable.exact:
            c = layer.non_trainable.lo // 2
            edits.append(Edit(f"no BatchNormalization {layer.name} (-4 x {c:,})", -layer.trainable.lo, -2 * c))
        edits.extend(_layer_edits(layer))
    for w in sorted(widths):
        edits.append(
            Edit(
                f"a BatchNormalization over {w:,} features (+4 x {w:,} = {4 * w:,}: {2 * w:,} non-trainable)",
                2 * w,
                2 * w,
            )
        )
    return edits[:80]


def explain_difference(d_trainable: int, d_non_trainable: int, edits: list[Edit], max_edits: int = 3) -> list[Edit]:
    """The smallest set of distinct edits whose arithmetic gives exactly the difference ([] if none)."""
    for size in range(1, max_edits + 1):
        for combo in itertools.combinations(edits, size):
            if (
                sum(e.trainable for e in combo) == d_trainable
                and sum(e.non_trainable for e in combo) == d_non_trainable
            ):
                return list(combo)
    return []


def verify(report: Report, expectation: Expectation) -> Verification:
    fw = report.framework
    assert fw is not None
    figures = [
        FigureCheck(
            name, expectation.figures[name], _found(fw, name), _verdict(expectation.figures[name], _found(fw, name))
        )
        for name in FIGURES
        if name in expectation.figures
    ]
    names_survive = any(la.name in {f.name for f in fw.layers} for la in expectation.layers if la.params)
    rows = {t.name: t for t in report.tensors}  # one index for every lookup below
    layers = _layer_checks(fw, expectation, rows) if names_survive else []
    consistent = all(f.verdict != MISMATCH for f in figures) and all(la.verdict != MISMATCH for la in layers)
    explanation: list[str] = []
    if not consistent:
        explanation = _explanation(rows, fw, expectation, figures)
    notes = list(fw.notes)
    if expectation.layers and not names_survive:
        notes.append("no expected layer name survives in this file: compared totals only")
    if any(f.verdict == WITHIN for f in figures):
        notes.append("some figures are ambiguous in this file: the expectation lies within their range")
    return Verification(
        report.schema_version, report.model, expectation.source, consistent, figures, layers, explanation, notes
    )


def _explanation(
    rows: dict[str, TensorRow], fw: FrameworkReport, expectation: Expectation, figures: list[FigureCheck]
) -> list[str]:
    lines: list[str] = []
    exp = expectation.figures
    found_t, found_n = fw.trainable, fw.non_trainable
    if not (found_t.exact and found_n.exact):
        return ["the file's figures are ambiguous ranges; a difference outside them cannot be split into edits"]
    if "trainable" in exp and "non_trainable" in exp:
        d_t, d_n = exp["trainable"] - found_t.lo, exp["non_trainable"] - found_n.lo
    elif "total" in exp and "non_trainable" in exp:
        d_n = exp["non_trainable"] - found_n.lo
        d_t = exp["total"] - fw.total.lo - d_n
    elif "total" in exp and "trainable" in exp:
        d_t = exp["trainable"] - found_t.lo
        d_n = exp["total"] - fw.total.lo - d_t
    else:
        return [f"{f.figure}: expected {f.expected:,}, file {f.found.text()}" for f in figures if f.verdict == MISMATCH]
    total = d_t + d_n
    lines.append(f"difference: {total:+,} total ({d_t:+,} trainable, {d_n:+,} non-trainable), expected minus file")
    edits = explain_difference(d_t, d_n, candidate_edits(fw, rows))
    if edits:
        lines.append("explained by: " + "; ".join(e.text for e in edits))
        totals = [e.trainable + e.non_trainable for e in edits]
        for label, terms in (
            ("total", totals),
            ("trainable", [e.trainable for e in edits]),
            ("non-trainable", [e.non_trainable for e in edits]),
        ):
            terms = [v for v in terms if v]
            if terms:
                lines.append(f"arithmetic ({label}): {_sum_text(terms)}")
    else:
        lines.append("no combination of up to 3 simple edits (bias, BatchNormalization, frozen layer) accounts for it")
    return lines


def _sum_text(terms: list[int]) -> str:
    """`300 + 100 + 3,136 = 3,536`, `-4,736 - 64 = -4,800`."""
    text = f"{terms[0]:,}"
    for v in terms[1:]:
        text += f" {'+' if v > 0 else '-'} {abs(v):,}"
    return f"{text} = {sum(terms):,}"
