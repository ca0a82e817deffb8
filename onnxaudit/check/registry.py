"""What a check rule is, what it produces, and the registry that selects rules before any of them runs.

A rule carries its stable ID, a short name, a default severity, the stage it needs (the file map, the
model view, or the scanned weight values), a one-line summary (the README's rules table is generated
from it), longer docs (SARIF help text), and its emitter: the function that finds it. An emitter yields
Hits; the runner stamps them with the rule's ID, name and severity, so an emitter cannot speak for
another rule. IDs never change meaning once released; a retired rule keeps its ID unused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from onnxaudit.errors import UsageError

if TYPE_CHECKING:
    from onnxaudit.check.context import CheckContext

Severity = Literal["error", "warning", "info"]
Subject = Literal["tensor", "node", "function", "domain", "model"]
# What a rule reads, cheapest first; each stage includes the ones before it.
Need = Literal["file", "view", "values"]

SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")
SEVERITY_RANK: dict[str, int] = {"error": 0, "warning": 1, "info": 2}
NEEDS: tuple[Need, ...] = ("file", "view", "values")

# The one statement of the ID scheme: a family per leading digit.
PREFIX = "OA"
FAMILIES: dict[str, str] = {
    "OA1": "weight values (one bounded scan per parameter tensor)",
    "OA2": "the graph (nodes, names, domains, roles)",
    "OA3": "the file format, its data, and the limits a user sets",
}
_ID = re.compile(rf"^{PREFIX}[1-9][0-9]{{2}}$")


@dataclass(frozen=True)
class Hit:
    """One occurrence an emitter found; `severity` only where the rule says it may be lower."""

    message: str
    subject: Subject
    target: str = ""
    scope: str = "main"
    severity: Severity | None = None


@dataclass(frozen=True)
class Finding:
    """One problem: which rule, how bad, a one-line message, and what it concerns.

    subject: tensor | node | function | domain | model. Names are raw; renderers escape them."""

    rule: str
    name: str
    severity: Severity
    message: str
    subject: Subject
    target: str = ""
    scope: str = "main"

    def sort_key(self) -> tuple[int, str, str, str, str]:
        return (SEVERITY_RANK[self.severity], self.rule, self.scope, self.target, self.message)


Emitter = Callable[["CheckContext"], Iterable[Hit]]


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: Severity
    needs: Need
    summary: str  # one line: when it fires (the README table's last column)
    docs: str  # why it matters and what to do about it
    emit: Emitter = field(compare=False, repr=False)

    def findings(self, ctx: CheckContext) -> Iterator[Finding]:
        for hit in self.emit(ctx):
            severity = hit.severity or self.severity
            yield Finding(self.id, self.name, severity, hit.message, hit.subject, hit.target, hit.scope)


class Registry:
    """The rules in ID order; selection happens here, before anything runs."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        ordered = sorted(rules, key=lambda r: r.id)
        by_id: dict[str, Rule] = {}
        names: set[str] = set()
        for rule in ordered:
            if not _ID.match(rule.id) or rule.id[: len(PREFIX) + 1] not in FAMILIES:
                raise ValueError(f"rule ID {rule.id!r} is outside the families {sorted(FAMILIES)}")
            if rule.id in by_id or rule.name in names:
                raise ValueError(f"rule {rule.id} {rule.name} registered twice")
            if rule.severity not in SEVERITIES or rule.needs not in NEEDS:
                raise ValueError(f"rule {rule.id}: unknown severity or need")
            by_id[rule.id] = rule
            names.add(rule.name)
        self._rules = by_id

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules.values())

    def __len__(self) -> int:
        return len(self._rules)

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._rules

    def __getitem__(self, rule_id: str) -> Rule:
        return self._rules[rule_id]

    def ids(self) -> list[str]:
        return list(self._rules)

    @property
    def id_range(self) -> str:
        ids = self.ids()
        return f"{ids[0]}..{ids[-1]}"

    def parse(self, text: str | None, flag: str) -> frozenset[str]:
        """Rule IDs from 'OA101,OA2' (a prefix selects a family); unknown ones are a usage error."""
        if not text:
            return frozenset()
        chosen: set[str] = set()
        for item in (part.strip().upper() for part in text.split(",")):
            if not item:
                continue
            matches = {rule for rule in self._rules if rule.startswith(item)}
            if not matches:
                raise UsageError(f"{flag}: unknown rule {item!r} (rules are {self.id_range}; see README)")
            chosen |= matches
        return frozenset(chosen)

    def select(self, select: str | None = None, ignore: str | None = None) -> tuple[Rule, ...]:
        """The rules that will run, in ID order: --select (default all) minus --ignore."""
        chosen = self.parse(select, "--select") or frozenset(self._rules)
        chosen -= self.parse(ignore, "--ignore")
        return tuple(rule for rule in self if rule.id in chosen)
