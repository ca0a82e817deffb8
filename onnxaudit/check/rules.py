"""The rules `onnxaudit check` applies: stable IDs, default severities, and the Finding they produce.

IDs never change meaning once released; a retired rule keeps its ID unused. OA1xx look at weight
values, OA2xx at the graph, OA3xx at the file format and its data.
"""

from __future__ import annotations

from dataclasses import dataclass

from onnxaudit.errors import UsageError

SEVERITIES = ("error", "warning", "info")
SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: str
    summary: str


RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("OA101", "nan-inf-weights", "error", "a parameter or BN statistic holds NaN or Inf"),
        Rule(
            "OA102",
            "bn-variance-not-positive",
            "error",
            "a BatchNormalization variance is negative, or var + epsilon <= 0",
        ),
        Rule("OA103", "bn-variance-tiny", "warning", "1/sqrt(var + epsilon) amplifies a channel more than 100x"),
        Rule("OA104", "all-zero-weights", "warning", "a weight, embedding or scale tensor is all zeros"),
        Rule(
            "OA105",
            "duplicate-weights",
            "warning",
            "the same contents stored twice (identical bytes or a transposed copy)",
        ),
        Rule("OA201", "bn-training-mode", "error", "BatchNormalization in training mode in an inference graph"),
        Rule("OA202", "bn-malformed", "error", "BatchNormalization with the wrong inputs or mismatched channel sizes"),
        Rule("OA203", "unused-initializer", "warning", "stored data that no node consumes"),
        Rule(
            "OA204",
            "overridable-initializer",
            "warning",
            "an initializer also listed as a graph input: callers can replace it",
        ),
        Rule("OA205", "duplicate-name", "error", "one name defined twice (initializers, node outputs, graph inputs)"),
        Rule("OA206", "unclassified-tensor", "info", "stored data of unknown role (counted as unclassified)"),
        Rule("OA207", "dangling-input", "error", "a node input or graph output refers to nothing"),
        Rule("OA208", "graph-cycle", "error", "nodes that depend on each other in a cycle"),
        Rule("OA209", "recursive-function", "error", "a local function that calls itself, directly or not"),
        Rule(
            "OA210", "custom-domain", "warning", "ops from a domain outside the ONNX standard (info for com.microsoft)"
        ),
        Rule("OA211", "float64-weights", "warning", "parameters stored as float64"),
        Rule(
            "OA212",
            "bn-not-channel-axis",
            "warning",
            "a BatchNormalization's width differs from the channels of the conv/dense before it",
        ),
        Rule("OA213", "unknown-op", "warning", "an op onnx does not define in a standard domain"),
        Rule("OA301", "bad-dims", "error", "a dim is negative, or the dims' product overflows"),
        Rule("OA302", "data-length-mismatch", "error", "stored data length disagrees with dims x item size"),
        Rule(
            "OA303",
            "external-data-unsafe",
            "error",
            "external data outside the model's folder, a link, or not a regular file",
        ),
        Rule("OA304", "external-data-range", "error", "external data offset/length not whole numbers inside the file"),
        Rule("OA305", "unsupported-ir", "error", "IR version newer than the installed onnx knows"),
        Rule("OA306", "unsupported-opset", "error", "opset newer than the installed onnx knows"),
        Rule("OA307", "too-many-params", "error", "more parameters than --max-params allows"),
        Rule("OA308", "not-scanned", "info", "weights whose values could not be scanned"),
    )
}


@dataclass(frozen=True)
class Finding:
    """One problem: which rule, how bad, a one-line message, and what it concerns.

    subject: tensor | node | function | domain | model. Names are raw; renderers escape them."""

    rule: str
    severity: str
    message: str
    subject: str
    target: str = ""
    scope: str = "main"

    @property
    def name(self) -> str:
        return RULES[self.rule].name

    def sort_key(self) -> tuple[int, str, str, str, str]:
        return (SEVERITY_RANK[self.severity], self.rule, self.scope, self.target, self.message)


def finding(
    rule: str, message: str, subject: str, target: str = "", scope: str = "main", severity: str = ""
) -> Finding:
    return Finding(rule, severity or RULES[rule].severity, message, subject, target, scope)


def parse_rule_list(text: str | None, flag: str) -> frozenset[str]:
    """Rule IDs from 'OA101,OA2' (a prefix selects a family); unknown ones are a usage error."""
    if not text:
        return frozenset()
    chosen: set[str] = set()
    for item in (part.strip().upper() for part in text.split(",")):
        if not item:
            continue
        matches = {rule for rule in RULES if rule.startswith(item)}
        if not matches:
            raise UsageError(f"{flag}: unknown rule {item!r} (rules are OA101..OA308; see README)")
        chosen |= matches
    return frozenset(chosen)


def active_rules(select: str | None, ignore: str | None) -> frozenset[str]:
    selected = parse_rule_list(select, "--select") or frozenset(RULES)
    return selected - parse_rule_list(ignore, "--ignore")
