"""`check --format junit`: JUnit XML as GitLab (artifacts:reports:junit) and Jenkins (junit step) read it.

A <testsuite> per model, a <testcase> per rule that ran (classname the model, name "ID rule-name"): a
<failure> when the rule found something at or above --fail-on, its findings below that in <system-out>.
An unusable file is a suite with one testcase in <error>. Text is escaped as in the text output, then by
the XML writer; characters XML 1.0 cannot hold are shown as \\xNN by `escape` first.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from onnxaudit.check.registry import SEVERITY_RANK, Finding
from onnxaudit.check.rules import REGISTRY
from onnxaudit.check.runner import CheckReport, CheckRun
from onnxaudit.render.check.common import where
from onnxaudit.render.summary import escape


def _line(f: Finding) -> str:
    return f"{f.rule} {f.severity}: {escape(f.message)} [{where(f)}]"


def _suite(report: CheckReport) -> ET.Element:
    limit = SEVERITY_RANK.get(report.fail_on, -1)
    model = escape(report.model)
    suite = ET.Element("testsuite", name=model, file=model)
    failures = 0
    for rule_id in report.rules:
        rule = REGISTRY[rule_id]
        case = ET.SubElement(suite, "testcase", classname=model, name=f"{rule.id} {rule.name}", file=model)
        found = [f for f in report.findings if f.rule == rule_id]
        failing = [f for f in found if SEVERITY_RANK[f.severity] <= limit]
        if failing:
            failures += 1
            plural = "" if len(failing) == 1 else "s"
            failure = ET.SubElement(
                case, "failure", type=rule.id, message=f"{len(failing)} finding{plural}: {escape(failing[0].message)}"
            )
            failure.text = "\n".join(_line(f) for f in failing) + f"\n\n{rule.docs}\n"
        quiet = [f for f in found if SEVERITY_RANK[f.severity] > limit]
        if quiet:
            ET.SubElement(case, "system-out").text = "\n".join(_line(f) for f in quiet) + "\n"
    suite.set("tests", str(len(report.rules)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", "0")
    return suite


def render_junit(run: CheckRun, verbose: bool = False) -> str:
    root = ET.Element("testsuites", name="onnxaudit check")
    tests = failures = errors = 0
    for report in run.reports:
        suite = _suite(report)
        root.append(suite)
        tests += int(suite.get("tests", "0"))
        failures += int(suite.get("failures", "0"))
    for unusable in run.unusable:
        model = escape(unusable.model)
        suite = ET.SubElement(root, "testsuite", name=model, file=model, tests="1", failures="0", errors="1")
        suite.set("skipped", "0")
        case = ET.SubElement(suite, "testcase", classname=model, name="read the model", file=model)
        ET.SubElement(case, "error", type="unusable", message=escape(unusable.error))
        tests += 1
        errors += 1
    root.set("tests", str(tests))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
