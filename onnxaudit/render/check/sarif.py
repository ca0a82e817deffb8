"""`check --format sarif`: SARIF 2.1.0 (OASIS), as GitHub code scanning's upload-sarif and other SARIF
viewers read it. One run: the rules that ran as reportingDescriptors (summary, docs as help text, default
level), each model an artifact, each finding a result at its model with the node, tensor, function or
domain as a logical location, and a partial fingerprint equal to the baseline's (rule, model, location).
Unusable files are tool execution notifications. Every name and message is escaped as in the text.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from onnxaudit.check.baseline import fingerprint, model_key
from onnxaudit.check.registry import Finding
from onnxaudit.check.rules import REGISTRY
from onnxaudit.check.runner import CheckRun
from onnxaudit.io.remote import is_url
from onnxaudit.render.summary import escape

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVEL = {"error": "error", "warning": "warning", "info": "note"}
# SARIF's logical location kinds (3.33.7) nearest to what a finding points at
KIND = {"tensor": "variable", "node": "function", "function": "function", "domain": "namespace"}


def artifact_uri(model: str) -> str:
    """The model as a URI: at a URL, that URL (only characters a URI cannot hold encoded); an absolute path
    as a file:// URI (SARIF 3.4.3: a relative reference is read against the repository root, so a bare
    `/home/ci/m.onnx` would name a file in the repository; upload-sarif makes a file URI under its
    checkout_path relative); a relative path normalized and percent-encoded, relative to where check ran."""
    key = model_key(model)
    if is_url(model):
        return quote(key.encode("utf-8", "surrogateescape"), safe="/:?#[]@!$&'()*+,;=%~")
    if os.path.isabs(key):
        return Path(key).as_uri()
    return quote(key.encode("utf-8", "surrogateescape"), safe="/")


def _logical(f: Finding) -> list[dict[str, Any]]:
    if f.subject == "model" and not f.target:
        return []
    name = escape(f.target)
    scoped = name if f.scope == "main" else f"{escape(f.scope)}/{name}"
    location: dict[str, Any] = {"name": name, "fullyQualifiedName": scoped}
    if f.subject in KIND:
        location["kind"] = KIND[f.subject]
    return [location]


def _rules(run: CheckRun) -> list[dict[str, Any]]:
    ran = sorted({rule for report in run.reports for rule in report.rules} or REGISTRY.ids())
    out = []
    for rule_id in ran:
        rule = REGISTRY[rule_id]
        out.append(
            {
                "id": rule.id,
                "name": rule.name,
                "shortDescription": {"text": rule.summary},
                "fullDescription": {"text": rule.docs},
                "help": {"text": f"{rule.summary}.\n\n{rule.docs}"},
                "defaultConfiguration": {"level": LEVEL[rule.severity]},
                "properties": {"tags": ["onnx", rule.needs]},
            }
        )
    return out


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # ~60 ms: only when SARIF is written

    try:
        return version("onnxaudit")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def render_sarif(run: CheckRun, verbose: bool = False) -> str:
    rules = _rules(run)
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    artifacts = [{"location": {"uri": artifact_uri(r.model)}} for r in run.reports]
    results = []
    for i, report in enumerate(run.reports):
        for f in report.findings:
            location: dict[str, Any] = {
                "physicalLocation": {"artifactLocation": {"uri": artifact_uri(report.model), "index": i}}
            }
            logical = _logical(f)
            if logical:
                location["logicalLocations"] = logical
            results.append(
                {
                    "ruleId": f.rule,
                    "ruleIndex": index[f.rule],
                    "level": LEVEL[f.severity],
                    "message": {"text": escape(f.message)},
                    "locations": [location],
                    "partialFingerprints": {"onnxauditFinding/v1": fingerprint(report.model, f)},
                }
            )
    notifications = [
        {"level": "error", "message": {"text": escape(u.error)}, "locations": [_file(u.model)]} for u in run.unusable
    ]
    invocation: dict[str, Any] = {"executionSuccessful": not run.unusable}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    sarif = {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {"driver": {"name": "onnxaudit", "version": _version(), "rules": rules}},
                "invocations": [invocation],
                "artifacts": artifacts,
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }
    return json.dumps(sarif, indent=2, sort_keys=True) + "\n"


def _file(model: str) -> dict[str, Any]:
    return {"physicalLocation": {"artifactLocation": {"uri": artifact_uri(model)}}}
