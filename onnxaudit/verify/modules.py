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

from collections.abc import Container
from dataclasses import dataclass, field

from onnxaudit.frameworks.figures import ZERO, Figure, FrameworkLayer
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
