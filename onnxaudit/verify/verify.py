"""`verify`: is this .onnx file still the model the framework described? Compare, then explain.

Figures are compared with the framework view (counts rebuilt through exporter rewrites). An exact
figure must equal the expectation; an ambiguous one must contain it. On a mismatch the difference is
explained layer by layer when the expectation names layers, and otherwise by the smallest set of
plausible model edits (a bias, a BatchNormalization, a frozen layer) whose arithmetic accounts for it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

from onnxaudit.frameworks.figures import EXACT, ZERO, Figure, FrameworkLayer, FrameworkReport
from onnxaudit.frameworks.keras import UNNAMED_CONV
from onnxaudit.frameworks.view import NOT_IN_FILE
from onnxaudit.report.build import Report, TensorRow
from onnxaudit.verify.assumptions import Solution, base_figures, layer_solution, solve
from onnxaudit.verify.expectations import FIGURES, Expectation, LayerExpectation
from onnxaudit.verify.modules import REST, ModuleGroup, RootNamed, Sharing, copies_of, group_modules

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
    # the defaults the file cannot show that the expectation implies taken the other way ("bn has
    # center=False", "conv0 is frozen (trainable=False)"): consistent if they hold; "" when none
    assuming: str = ""


def _verdict(expected: int, found: Figure) -> str:
    if found.exact:
        return MATCH if found.lo == expected else MISMATCH
    return WITHIN if found.contains(expected) else MISMATCH


def _found(fw: FrameworkReport, figure: str) -> Figure:
    return {"total": fw.total, "trainable": fw.trainable, "non_trainable": fw.non_trainable}[figure]


CUT = "…"
CUT_SHORT = "its name is cut short in the summary and more than one layer of the file starts so: not compared"


def _merge_scoped(expected: list[LayerExpectation], by_name: dict[str, FrameworkLayer]) -> list[LayerExpectation]:
    """Keras layers named with a slash (DenseNet's `conv1/conv`, `conv1/bn`; MobileNetV3's `Conv` and
    `Conv/BatchNorm`) that the file shows as one scope (`conv1`, `Conv`): one expectation for that scope,
    their counts added (to the layer named as the scope, when there is one), in the first one's place."""
    out: list[LayerExpectation] = []
    at: dict[str, int] = {}  # scope -> its expectation's index in out
    for layer in expected:
        scope = layer.name.partition("/")[0]
        if "/" not in layer.name or layer.name in by_name or scope not in by_name:
            at.setdefault(layer.name, len(out))
            out.append(layer)
        elif scope in at:
            prior = out[at[scope]]
            out[at[scope]] = LayerExpectation(scope, f"{prior.kind}+{layer.kind}", prior.params + layer.params)
        else:
            at[scope] = len(out)
            out.append(LayerExpectation(scope, layer.kind, layer.params))
    return out


def _survives(name: str, names: set[str]) -> bool:
    """The expected layer's name is in the file (one cut short with an ellipsis: as one file name's start)."""
    if name.endswith(CUT):
        return sum(n.startswith(name[:-1]) for n in names) == 1
    return name in names


def _layer_checks(
    fw: FrameworkReport, expectation: Expectation, rows: dict[str, TensorRow], report: Report
) -> list[LayerCheck]:
    if expectation.modules:
        return _module_checks(fw, expectation, rows, report)
    by_name = {la.name: la for la in fw.layers}
    checks: list[LayerCheck] = []
    seen: set[str] = set()
    for layer in _merge_scoped(expectation.layers, by_name):
        if layer.name.endswith(CUT):  # a narrow Keras 3 table cut the name: its one match in the file, if one
            matches = [name for name in by_name if name.startswith(layer.name[:-1]) and name not in seen]
            if len(matches) != 1:
                seen.update(matches)
                if layer.params:
                    checks.append(LayerCheck(layer.name, layer.kind, layer.params, None, WITHIN, CUT_SHORT))
                continue
            layer = LayerExpectation(matches[0], layer.kind, layer.params)
        if layer.params == 0 and layer.name not in by_name:
            continue
        found = by_name.get(layer.name)
        seen.add(layer.name)
        if found is None:
            checks.append(
                LayerCheck(layer.name, layer.kind, layer.params, None, MISMATCH, f"not in the file ({layer.params:,})")
            )
            continue
        verdict, explain = _layer_verdict(layer.params, found)
        if verdict == MISMATCH:
            explain = _explain_layer(layer.params, found, rows)
        checks.append(LayerCheck(layer.name, layer.kind, layer.params, found.total, verdict, explain))
    extra = [la for la in fw.layers if la.name not in seen and la.total != ZERO] if expectation.layers else []
    _pair_folded(checks, extra)
    _pair_maybe_folded(checks, extra)
    for la in extra:
        # a group whose range starts at 0 (anchors, a normalization's mean and std: constants that may
        # be parameters) agrees with a framework that lists no such module
        if la.total.lo == 0:
            verdict, why = WITHIN, "not expected; may hold no parameters"
        else:
            verdict, why = MISMATCH, "in the file, not expected"
        checks.append(LayerCheck(la.name, la.kind, None, la.total, verdict, why))
    return checks


def _layer_verdict(expected: int, found: FrameworkLayer) -> tuple[str, str]:
    """A layer whose figures rest on defaults: consistent when some of them, taken the other way, give
    `expected` (and say which); otherwise its figure decides."""
    if not found.alternatives or base_figures(found) is None:
        return _verdict(expected, found.total), ""
    solution = layer_solution(found, expected)
    if solution is None:
        return MISMATCH, ""
    if not solution.taken:
        return MATCH, ""
    return WITHIN, f"consistent if {solution.text()}"


FOLDED = " (+folded BatchNorm)"


def _pair_folded(checks: list[LayerCheck], extra: list[FrameworkLayer]) -> None:
    """A BatchNorm whose name the fold erased (`conv1 (+folded BatchNorm)`) stands for the expected
    BN module that is missing from the file. Pairs by count (torch's counts list modules by name, not in
    graph order): first the folds whose figure is the module's count, then those that hold it; among
    them the one whose name shares most of the module's path, then the first in graph order."""
    missing = [c for c in checks if c.found is None]
    folded = [la for la in extra if la.name.endswith(FOLDED)]
    unnamed = [la for la in extra if UNNAMED_CONV in la.name]
    if not missing or len(missing) != len(folded) + len(unnamed):
        return
    candidates = sorted(folded + unnamed, key=extra.index)
    pairs: dict[int, FrameworkLayer] = {}
    for fits in (lambda la, n: la.total.shown == n, lambda la, n: la.total.contains(n), lambda la, n: True):
        for i, check in enumerate(missing):
            if i not in pairs:
                found = [la for la in candidates if fits(la, check.expected or 0)]
                if found:
                    pairs[i] = max(found, key=lambda la: (_shared_parts(check.name, la.name), -candidates.index(la)))
                    candidates.remove(pairs[i])
    for i, check in enumerate(missing):
        layer = pairs[i]
        check.found = layer.total
        check.verdict, check.explain = _layer_verdict(check.expected or 0, layer)
        if layer.name.endswith(FOLDED):
            paired = f"folded into {layer.name.removesuffix(FOLDED)} (paired by their counts)"
        else:
            paired = f"the file's {layer.name} (its name lost in the fold; paired by their counts)"
        check.explain = f"{paired}; {check.explain}" if check.explain else paired
        extra.remove(layer)


MAYBE_FOLDED = " (+BatchNorm folded?)"


def _pair_maybe_folded(checks: list[LayerCheck], extra: list[FrameworkLayer]) -> None:
    """An expected BatchNormalization missing from the file that a row which may hold a fold (a TFLite
    `fc (+BatchNorm folded?)`) can be: the first such row, in graph order, one of whose folds alone is
    its count."""
    maybe = [la for la in extra if la.name.endswith(MAYBE_FOLDED)]
    for check in [c for c in checks if c.found is None and "BatchNorm" in c.kind] if maybe else ():
        for la in maybe:
            fold = next((a for a in la.alternatives if a.trainable + a.non_trainable == check.expected), None)
            if fold is not None:
                check.found, check.verdict = la.total, WITHIN
                check.explain = f"consistent if {fold.text}"
                maybe.remove(la)
                extra.remove(la)
                break


def _shared_parts(a: str, b: str) -> int:
    """How many leading dotted parts two names share (`blocks.0.0.bn1`, `blocks.0.0.conv_dw`: 3)."""
    n = 0
    for x, y in zip(a.split("."), b.split("."), strict=False):
        if x != y:
            break
        n += 1
    return n


def _module_checks(
    fw: FrameworkReport, expectation: Expectation, rows: dict[str, TensorRow], report: Report
) -> list[LayerCheck]:
    """torch's per-module counts against the file's rows by module path (verify/modules.py), folded
    BatchNorms paired first; a tied weight torch counts in two modules, where the file shows it shared."""
    listed = sum(e.trainable or 0 for e in expectation.layers)
    tensors = {name: (t.count, t.layer) for name, t in rows.items() if t.count}
    sharing = Sharing(
        report.shared_reads, tensors, copies_of(fw.layers), listed - expectation.figures.get("trainable", listed)
    )
    sharing.name_tensors(rows)
    wanted = {e.name for e in expectation.layers}
    layers = list(fw.layers)
    by_name = {la.name for la in layers}
    # a module's row that holds no parameter (a tied head reading another's weight) still marks its place
    layers += [
        FrameworkLayer(r.name, "", ZERO, ZERO, EXACT) for r in report.rows if r.name in wanted and r.name not in by_name
    ]
    by_name.update(la.name for la in layers)
    missing = [e for e in expectation.layers if e.name not in by_name]
    # BatchNorm modules by their class; counts with no classes: every missing module may be one
    missing_bn = [e for e in missing if "BatchNorm" in e.kind] if any(e.kind for e in missing) else missing
    folds = [la for la in layers if la.name not in wanted and (la.name.endswith(FOLDED) or UNNAMED_CONV in la.name)]
    checks: list[LayerCheck] = []
    placed: list[LayerExpectation] = []
    expected = expectation.layers
    if missing_bn and len(missing_bn) == len(folds):
        checks += [LayerCheck(e.name, e.kind, e.params, None, MISMATCH) for e in missing_bn]
        _pair_folded(checks, folds[:])
        placed += missing_bn
        layers = [la for la in layers if la not in folds]
        expected = [e for e in expected if e not in missing_bn]
    grouping = group_modules(expected, layers)
    root = RootNamed.of(rows)
    for group in grouping.groups:
        checks.append(_group_check(group, rows, sharing, root))
        placed += group.expected
    checks += _rest_checks(expectation, grouping.rest_rows, placed, grouping.rest_modules, sharing, root)
    return checks


def _group_check(group: ModuleGroup, rows: dict[str, TensorRow], sharing: Sharing, root: RootNamed) -> LayerCheck:
    e, want = group.expected[0], group.expected_total()
    names = [x.name for x in group.expected]
    if all(r.kind == NOT_IN_FILE for r in group.rows):
        sharing.unheld.update((x.name, x.params) for x in group.expected)
    if len(group.expected) == 1 and len(group.rows) == 1 and group.rows[0].name == e.name:
        found = group.rows[0]
        verdict, explain = _layer_verdict(want, found)
        if verdict == MISMATCH and found.total.exact:
            explain = sharing.settles(names, want - found.total.lo) or root.settles(found, want)
            verdict = MATCH if explain else MISMATCH
        else:  # a range that holds the module's count (its lower bound, or some choices taken)
            root.allow(found, want)
        if verdict == MISMATCH:
            explain = _explain_layer(want, found, rows)
        return LayerCheck(e.name, e.kind, want, found.total, verdict, explain)
    name = " + ".join(names) if len(names) <= 3 else f"{names[0]} + {len(names) - 1} more modules"
    shown = ", ".join(r.name for r in group.rows[:4]) + (
        f" and {len(group.rows) - 4} more" if len(group.rows) > 4 else ""
    )
    terms = _sum_text([x.params for x in group.expected]) if len(names) > 1 else f"{want:,}"
    rows_word = "one row" if len(group.rows) == 1 else f"{len(group.rows)} rows"
    why = f"the file shows them as {rows_word} ({shown}): compared with their sum {terms}"
    if len(names) == 1:
        why = f"the file shows it as {rows_word} ({shown})"
    found_total = group.found
    verdict = _verdict(want, found_total)
    shared = sharing.settles(names, want - found_total.lo) if verdict == MISMATCH and found_total.exact else ""
    if shared:
        verdict, why = MATCH, f"{why}; {shared}"
    if verdict == MISMATCH:
        diff = want - (found_total.shown if found_total.shown is not None else found_total.lo)
        why += f"; expected {want:,}, file {found_total.text()}: {diff:+,}"
    kind = "+".join(dict.fromkeys(x.kind for x in group.expected if x.kind))
    return LayerCheck(name, kind, want, found_total, verdict, why)


def _rest_checks(
    expectation: Expectation,
    rest: list[FrameworkLayer],
    placed: list[LayerExpectation],
    unseen: list[LayerExpectation],
    sharing: Sharing,
    root: RootNamed,
) -> list[LayerCheck]:
    """The rows no listed module holds against what the expectation's totals leave outside the modules
    compared with rows (the root module's own parameters, modules holding buffers only, listed modules
    with no row): parameters and statistics, or parameters alone when no statistics are given. The
    listed modules with no row must fit in it, but for one whose only row reads a tied weight."""
    figures = expectation.figures
    rows = [la for la in rest if la.total != ZERO]
    shared = [(e, sharing.settles([e.name], e.params)) for e in unseen]  # a tied module's only row holds 0
    unseen = [e for e, why in shared if not why]
    placed = placed + [e for e, why in shared if why]
    found = Figure(root.moved, root.moved + root.may_move) if root.moved or root.may_move else ZERO
    if "total" in figures:
        want = figures["total"] - sum(e.params for e in placed) + sharing.used
        for la in rows:
            found = found + la.total
    else:
        want = figures["trainable"] - sum(e.trainable or 0 for e in placed) + sharing.used
        for la in rows:
            found = found + la.trainable
    tied = [LayerCheck(e.name, e.kind, e.params, ZERO, MATCH, why) for e, why in shared if why]
    may_share = sharing.may_share()
    if not rows and not unseen and want == 0 and not root.moved:
        return tied
    # modules the file holds nothing of may be tied to a stored weight: their counts then not in the totals
    want = min(max(want, found.lo), want + may_share)
    verdict = _verdict(want, found)
    shown = ", ".join(la.name for la in rows[:4]) + (f" and {len(rows) - 4} more" if len(rows) > 4 else "")
    why = f"rows no listed module holds ({shown or 'none'}) against the totals less the listed modules: {want:,}"
    if root.moved or root.may_move:
        why += f"; with tensors named as the root's own in module rows ({root.moved:,}, {root.may_move:,} more may be)"
    if may_share:
        names = ", ".join(sharing.unheld)
        why += f"; modules the file holds nothing of ({names}) may share a stored weight: up to {may_share:,} less"
    if verdict == MISMATCH:
        why += f"; file {found.text()}"
    held = sum(e.params if "total" in expectation.figures else e.trainable or 0 for e in unseen)
    if held:
        names = ", ".join(e.name for e in unseen[:3]) + (f" and {len(unseen) - 3} more" if len(unseen) > 3 else "")
        why += f"; listed modules with no row in the file ({names}) hold {held:,} of it"
        if held > want:
            verdict, why = MISMATCH, why + f", more than the {want:,} left"
    return [*tied, LayerCheck(REST, "", want, found, verdict, why)]


def _explain_layer(expected: int, found: FrameworkLayer, rows: dict[str, TensorRow]) -> str:
    diff = expected - (found.total.shown if found.total.shown is not None else found.total.lo)
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
    assumption: str = ""  # an edit no ONNX file can show (a frozen layer): what the expectation then implies
    group: str | None = None  # edits of one group exclude each other (Alternative.group)


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
            groups = [e.group for e in combo if e.group is not None]
            if (
                len(groups) == len(set(groups))
                and sum(e.trainable for e in combo) == d_trainable
                and sum(e.non_trainable for e in combo) == d_non_trainable
            ):
                return list(combo)
    return []


def verify(report: Report, expectation: Expectation) -> Verification:
    fw = report.framework
    assert fw is not None
    exp = {name: expectation.figures[name] for name in FIGURES if name in expectation.figures}
    names = {f.name for f in fw.layers}
    names_survive = any(_survives(la.name, names) for la in expectation.layers if la.params)
    rows = {t.name: t for t in report.tensors}  # one index for every lookup below
    layers = _layer_checks(fw, expectation, rows, report) if names_survive else []
    settled, taken = _settle_layers(fw.layers, _settling(layers, expectation, rows))
    solution = solve(settled, exp) if exp else Solution([], True)
    if solution is not None:
        solution.taken[:0] = taken.taken
        solution.unique = solution.unique and taken.unique
    assuming = solution.text() if solution is not None and solution.taken else ""
    figures = [FigureCheck(name, value, _found(fw, name), "") for name, value in exp.items()]
    for f in figures:
        f.verdict = _figure_verdict(f, settled, solution)
    consistent = solution is not None and all(la.verdict != MISMATCH for la in layers)
    explanation: list[str] = []
    if solution is None and all(la.verdict != MISMATCH for la in layers):
        frozen = _unseen_edits(fw, exp)
        if frozen:  # only what the file cannot show (frozen layers) tells the figures apart
            consistent, assuming = True, " and ".join(e.assumption for e in frozen)
            for f in figures:
                f.verdict = WITHIN if f.verdict == MISMATCH else f.verdict
    if not consistent:
        explanation = _explanation(rows, fw, expectation, figures, layers)
    notes = list(fw.notes)
    if expectation.layers and not names_survive:
        notes.append("no expected layer name survives in this file: compared totals only")
    if any(f.verdict == WITHIN for f in figures) and not assuming:
        notes.append("some figures are ambiguous in this file: the expectation lies within their range")
    return Verification(
        report.schema_version,
        report.model,
        expectation.source,
        consistent,
        figures,
        layers,
        explanation,
        notes,
        assuming,
    )


def _settling(checks: list[LayerCheck], expectation: Expectation, rows: dict[str, TensorRow]) -> list[LayerCheck]:
    """The checks whose expected count covers their whole row: a module's row that also holds tensors named
    as the root module's own (CaiT's cls_token, expanded inside blocks_token_only.0) is not settled by the
    module's count, which leaves them out; its choices stay open for the totals (else the row is held at
    the module's count and torch's total, root tensors included, seems out of reach)."""
    if not expectation.modules:
        return checks
    holding_root = set(RootNamed.of(rows).bare)
    return [c for c in checks if c.name not in holding_root]


def _settle_layers(found: list[FrameworkLayer], checks: list[LayerCheck]) -> tuple[list[FrameworkLayer], Solution]:
    """The framework layers with each expected layer's defaults settled by its own expected count (the
    alternatives that give it, taken), and those alternatives: the totals are then searched over the rest."""
    expected = {c.name: c.expected for c in checks if c.verdict != MISMATCH and c.expected is not None}
    settled, taken = [], Solution([], True)
    for la in found:
        want = expected.get(la.name)
        solution = layer_solution(la, want) if la.alternatives and want is not None else None
        if solution is None:
            settled.append(la)
            continue
        taken.taken += solution.taken
        taken.unique = taken.unique and solution.unique
        base_t, base_n = base_figures(la) or (0, 0)
        t = base_t + sum(a.trainable for a in solution.taken)
        n = base_n + sum(a.non_trainable for a in solution.taken)
        settled.append(FrameworkLayer(la.name, la.kind, Figure.of(t), Figure.of(n), la.status))
    return _without_groups(settled, {a.group for a in taken.taken if a.group}), taken


def _without_groups(layers: list[FrameworkLayer], taken: set[str]) -> list[FrameworkLayer]:
    """The layers without the alternatives of groups a settled layer took (at most one of a group); a
    layer left with none keeps its likely figures."""
    out = []
    for la in layers:
        kept = [a for a in la.alternatives if a.group not in taken]
        t, n = la.trainable.shown, la.non_trainable.shown
        if len(kept) == len(la.alternatives):
            out.append(la)
        elif kept or t is None or n is None:
            out.append(replace(la, alternatives=kept))
        else:
            out.append(replace(la, trainable=Figure.of(t), non_trainable=Figure.of(n), alternatives=[]))
    return out


def _figure_verdict(check: FigureCheck, layers: list[FrameworkLayer], solution: Solution | None) -> str:
    """match: exact, or the likely value with every default as assumed; within range: consistent with
    the file's bounds (and, where the figures rest on defaults, with one set of them taken the other
    way); mismatch: no set of defaults and no value in range gives this figure."""
    found, expected = check.found, check.expected
    if solution is None:
        alone = solve(layers, {check.figure: expected})
        if alone is None:
            return MISMATCH
        return MATCH if found.shown == expected and not alone.taken else WITHIN
    if found.exact or (found.shown == expected and not solution.taken):
        return MATCH
    return WITHIN


def _differences(fw: FrameworkReport, exp: dict[str, int]) -> tuple[int, int] | None:
    """(trainable, non-trainable) expected minus the file's shown figures; None where the expectation
    names too few figures or the file shows a bare range."""
    found_t, found_n, found_total = fw.trainable.shown, fw.non_trainable.shown, fw.total.shown
    if found_t is None or found_n is None or found_total is None:
        return None
    if "trainable" in exp and "non_trainable" in exp:
        return exp["trainable"] - found_t, exp["non_trainable"] - found_n
    if "total" in exp and "non_trainable" in exp:
        d_n = exp["non_trainable"] - found_n
        return exp["total"] - found_total - d_n, d_n
    if "total" in exp and "trainable" in exp:
        d_t = exp["trainable"] - found_t
        return d_t, exp["total"] - found_total - d_t
    return None


def _unseen_edits(fw: FrameworkReport, exp: dict[str, int]) -> list[Edit]:
    """The fewest layers frozen (trainable=False: no ONNX file shows it), with the defaults the figures
    assume taken either way, that give the expected figures exactly ([] if none do)."""
    diff = _differences(fw, exp)
    if diff is None or diff == (0, 0):
        return []
    edits = [
        Edit(f"{la.name} frozen", -t, t, f"{la.name} is frozen (trainable=False)")
        for la in fw.layers
        if (t := la.trainable.shown)
    ]
    edits += [Edit(a.text, a.trainable, a.non_trainable, a.text, a.group) for la in fw.layers for a in la.alternatives]
    return explain_difference(*diff, edits[:80])


def _explanation(
    rows: dict[str, TensorRow],
    fw: FrameworkReport,
    expectation: Expectation,
    figures: list[FigureCheck],
    layers: list[LayerCheck],
) -> list[str]:
    diff = _differences(fw, expectation.figures)
    if diff is None:
        if fw.total.shown is None and any(f.figure in expectation.figures for f in figures):
            return ["the file's figures are ambiguous ranges; a difference outside them cannot be split into edits"]
        return [f"{f.figure}: expected {f.expected:,}, file {f.found.text()}" for f in figures if f.verdict == MISMATCH]
    d_t, d_n = diff
    total = d_t + d_n
    lines = [f"difference: {total:+,} total ({d_t:+,} trainable, {d_n:+,} non-trainable), expected minus file"]
    accounted = _layer_differences(layers)
    if accounted:
        terms = [d for _, d in accounted]
        lines.append("the layers that differ: " + "; ".join(f"{name} {d:+,}" for name, d in accounted))
        if sum(terms) == total:
            lines.append(f"arithmetic (total): {_sum_text(terms)}")
            return lines
        lines.append(f"they account for {sum(terms):+,} of {total:+,}")
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


def _layer_differences(layers: list[LayerCheck]) -> list[tuple[str, int]]:
    """(name, expected minus file) of every layer that differs, where both sides give a number."""
    out = []
    for la in layers:
        if la.verdict != MISMATCH:
            continue
        found = 0 if la.found is None else la.found.shown
        if found is not None:
            out.append((la.name, (la.expected or 0) - found))
    return out


def _sum_text(terms: list[int]) -> str:
    """`300 + 100 + 3,136 = 3,536`, `-4,736 - 64 = -4,800`."""
    text = f"{terms[0]:,}"
    for v in terms[1:]:
        text += f" {'+' if v > 0 else '-'} {abs(v):,}"
    return f"{text} = {sum(terms):,}"
