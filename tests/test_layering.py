"""The package's folders follow DESIGN's flow: a stage imports only stages below it (or its own folder)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "onnxaudit"

# Lowest first. A module may import its own folder and any stage of a lower rank; type-only imports
# (under `if TYPE_CHECKING:`) may also point at a stage of the same or a higher rank.
RANKS = {
    "_version": 0,
    "errors": 0,
    "io": 1,
    "model": 2,
    "count": 3,
    "frameworks": 4,
    "shapes": 5,
    "cost": 5,
    "report": 6,
    "verify": 7,
    "check": 7,
    "diff": 8,
    "render": 9,
    "api": 10,
    "scan": 11,
    "cli": 12,
    "__init__": 13,
    "__main__": 13,
}


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported onnxaudit module, line, type-only) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "onnxaudit":
            for alias in node.names:
                module = node.module if node.module != "onnxaudit" else f"onnxaudit.{alias.name}"
                found.append((module, node.lineno, id(node) in type_only))
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.split(".")[0] == "onnxaudit"]
            found += [(name, node.lineno, id(node) in type_only) for name in names]
    return found


def test_every_folder_has_a_rank():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert folders | modules <= set(RANKS), sorted((folders | modules) - set(RANKS))


def test_no_stage_imports_a_higher_one():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        here = parts[0]
        for module, line, type_only in _imports(path):
            there = _stage(module)
            if there == here or RANKS.get(there, 99) < RANKS[here]:
                continue
            if type_only and there in RANKS:
                continue
            wrong.append(f"{path.relative_to(PACKAGE)}:{line} ({here}) imports {module} ({there})")
    assert not wrong, "\n".join(wrong)


def test_the_library_never_imports_the_cli():
    users = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] not in ("cli", "__main__.py")
        and any(_stage(module) == "cli" for module, _, _ in _imports(path))
    ]
    assert not users, users
