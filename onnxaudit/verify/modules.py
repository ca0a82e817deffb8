"""Per-module torch counts against the file's rows, at the depth the expectation names.

torch lists each module's own parameters (`module.parameters(recurse=False)`) under its dotted path; a file
shows rows at its own depth. An expected module with a row of its own is compared with it (and with the
rows under it that no listed module names). One without a row is compared together with the file's rows
under it (the expectation names a parent; the file, its children) and the nearest row above it (an
exporter merged `mha.out_proj` into `mha`, a parametrization into its module, folded position embeddings
into `embeddings`): the file shows no boundary there, so the group's rows are compared with the sum of
the modules they cover, and the check says so. A module with no row at, under or above it, and the rows
no listed module holds (the root module's own parameters such as ViT's `pos_embed`, modules with buffers
only), are compared with what the expectation's totals leave outside the other modules.
A wrong count for any module still shows: a merged row is compared with an exact sum, never loosened.
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping
from dataclasses import dataclass, field

from onnxaudit.count.layers import path_from_tensor_name
from onnxaudit.frameworks.figures import ZERO, Figure, FrameworkLayer
from onnxaudit.report.build import TensorRow
from onnxaudit.verify.expectations import LayerExpectation

REST = "(outside the listed modules)"


@dataclass
class ModuleGroup:
    """Expected modules and the file rows compared with them as one."""

    anchor: str  # the row or module the group is named after
    expected: list[LayerExpectation] = field(default_factory=list)
    rows: list[FrameworkLayer] = field(default_factory=list)

    @property
    def found(self) -> Figure:
        total = ZERO
        for row in self.rows:
            total = total + row.total
        return total

    def expected_total(self) -> int:
        return sum(e.params for e in self.expected)


def _ancestors(name: str) -> list[str]:
    """`a.b.c` -> [`a.b`, `a`]: the dotted paths above a module, nearest first."""
    parts = name.split(".")
    return [".".join(parts[:k]) for k in range(len(parts) - 1, 0, -1)]


def _deepest(name: str, names: Container[str]) -> str | None:
    return next((a for a in _ancestors(name) if a in names), None)


@dataclass
class ModuleGrouping:
    """Expected modules and file rows in groups compared as one (a module and its row, most often)."""

    groups: list[ModuleGroup]
    rest_rows: list[FrameworkLayer]  # rows no listed module holds
    rest_modules: list[LayerExpectation]  # listed modules with no row at, under or above them


class _Union:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        root = self.parent.setdefault(key, key)
        while root != self.parent[root]:
            root = self.parent[root]
        self.parent[key] = root
        return root

    def join(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def group_modules(expected: list[LayerExpectation], rows: list[FrameworkLayer]) -> ModuleGrouping:
    """A row joins the module of its name, else the deepest listed module above it. A listed module with no
    row of its own joins the rows under it and the nearest row above it: the file shows no boundary there."""
    by_name = {row.name: row for row in rows}
    wanted = {e.name: e for e in expected}
    union = _Union()
    for row in rows:
        holder = row.name if row.name in wanted else _deepest(row.name, wanted)
        union.join(f"r:{row.name}", f"e:{holder}" if holder else f"r:{row.name}")
    for e in expected:
        union.find(f"e:{e.name}")
        if e.name not in by_name:
            above = _deepest(e.name, by_name)
            if above is not None:
                union.join(f"e:{e.name}", f"r:{above}")
    groups: dict[str, ModuleGroup] = {}
    for row in rows:
        groups.setdefault(union.find(f"r:{row.name}"), ModuleGroup(row.name)).rows.append(row)
    rest_modules: list[LayerExpectation] = []
    for e in expected:
        group = groups.get(union.find(f"e:{e.name}"))
        if group is None:
            rest_modules.append(e)
        else:
            group.expected.append(e)
    kept = [g for g in groups.values() if g.expected]
    rest_rows = [row for g in groups.values() if not g.expected for row in g.rows]
    return ModuleGrouping(kept, rest_rows, rest_modules)


@dataclass
class Sharing:
    """Parameters torch counts in more than one module (a tied weight: GPT-2's lm_head and wte): the
    expectation's modules then list more than its parameters, by `budget`. A module may count a tensor
    held by another row when the file shows it reading that tensor, or storing a copy of it."""

    reads: dict[str, list[str]]  # row -> counted tensors of other rows its nodes read (Report.shared_reads)
    tensors: dict[str, tuple[int, str]]  # tensor -> (elements, the row holding it)
    copies: dict[str, list[tuple[str, str]]]  # row -> (copy, original): a tensor found to be another's copy
    budget: int  # the modules' sum less the parameters: at most this much is shared
    used: int = 0  # elements settled as shared so far
    # module -> tensors whose state_dict name says it holds them, filed in another row (T5's
    # `model.shared.weight`, read by encoder.embed_tokens: torch's model.shared is never called)
    named: dict[str, list[str]] = field(default_factory=dict)
    # modules whose only rows are parameters the file does not hold (tied to a stored one, or never called):
    # their counts may be in the budget, shared, or in the parameters (frameworks/view.not_in_the_file)
    unheld: dict[str, int] = field(default_factory=dict)

    def may_share(self) -> int:
        """How much of the unheld modules' counts may be shared: at most what the budget leaves."""
        return min(sum(self.unheld.values()), max(self.budget - self.used, 0))

    def name_tensors(self, rows: Mapping[str, TensorRow]) -> None:
        for t in rows.values():
            path = path_from_tensor_name(t.name)
            if path is not None and t.count and ".".join(path) != t.layer:
                self.named.setdefault(".".join(path), []).append(t.name)

    def settles(self, names: list[str], missing: int) -> str:
        """Why `missing` elements the file does not show in these modules are shared ("" if not)."""
        found: dict[str, str] = {}  # the tensor counted -> the one named
        for name in names:
            found.update((t, t) for t in self.reads.get(name, []))
            found.update(self.copies.get(name, []))
            found.update((t, t) for t in self.named.get(name, []))
        found = {t: shown for t, shown in found.items() if t in self.tensors}
        amount = sum(self.tensors[t][0] for t in found)
        if missing <= 0 or amount != missing or missing > self.budget - self.used:
            return ""
        self.used += missing
        held = ", ".join(f"{shown} of {self.tensors.get(shown, self.tensors[t])[1]}" for t, shown in found.items())
        return f"shares {held} ({missing:,}): torch counts a tied weight in each module, the file stores it once"


def copies_of(rows: list[FrameworkLayer]) -> dict[str, list[tuple[str, str]]]:
    """Row -> (copy, original) of the tensors its evidence calls another stored again (a tied head's
    transposed copy: `onnx::MatMul_12 is emb.weight stored again, transposed ...`)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        for line in row.evidence:
            copy, _, rest = line.partition(" is ")
            original, again, _ = rest.partition(" stored again")
            if again and copy in row.tensors:
                out.setdefault(row.name, []).append((copy, original))
    return out


_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class RootNamed:
    """Tensors named like a root module's state_dict keys (`cls_token`, `pos_embed`: no module in the
    name) that the file files under a listed module's row (timm CaiT's cls_token, expanded inside
    blocks_token_only.0). torch counts them in no listed module: a row that holds exactly them beyond
    its module's count gives them to the rest; a row whose range holds its count either way may."""

    bare: dict[str, list[tuple[str, int]]]  # row -> (tensor, elements)
    moved: int = 0  # given to the rest
    may_move: int = 0  # held by rows whose ranges hold their count without them

    @staticmethod
    def of(rows: Mapping[str, TensorRow]) -> RootNamed:
        bare: dict[str, list[tuple[str, int]]] = {}
        for t in rows.values():
            if t.count and t.bucket and t.layer and _BARE.fullmatch(t.name) and not t.name.startswith("val_"):
                bare.setdefault(t.layer, []).append((t.name, t.count))
        return RootNamed(bare)

    def settles(self, row: FrameworkLayer, want: int) -> str:
        """Why the exact `row` holds more than `want` ("" if the root-named tensors do not make it up)."""
        held = self.bare.get(row.name, [])
        extra = sum(n for _, n in held)
        if not held or not row.total.exact or row.total.lo - extra != want:
            return ""
        self.moved += extra
        names = ", ".join(f"{t} ({n:,})" for t, n in held)
        return f"holds {names}: named as the root module's own, compared with the rest"

    def allow(self, row: FrameworkLayer, want: int) -> None:
        """The ranged `row` holds its module's count `want` with or without its root-named tensors: they may
        be the rest's (zoo_root_token through TorchScript: `cls_token` exact beside the block's gamma, a
        choice; the row's lower bound is the block's count by cls_token alone)."""
        held = sum(n for _, n in self.bare.get(row.name, []))
        if held and not row.total.exact and row.total.contains(want) and row.total.lo - held <= want:
            self.may_move += held
