"""The hardware layer imports nothing from master or agent (architecture.md, Layout)."""

from __future__ import annotations

import ast
from pathlib import Path

import hw

FORBIDDEN = ("master", "agent")
HW_ROOT = Path(hw.__file__).parent


def imported_modules(source: Path) -> set[str]:
    tree = ast.parse(source.read_text(), filename=str(source))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def test_hw_imports_nothing_from_master_or_agent() -> None:
    sources = sorted(HW_ROOT.rglob("*.py"))
    assert len(sources) > 10  # the scan really sees the package
    offenders = {
        f"{path.relative_to(HW_ROOT.parent)}: {module}"
        for path in sources
        for module in imported_modules(path)
        if module.split(".")[0] in FORBIDDEN
    }
    assert not offenders, f"hw must not import master or agent: {sorted(offenders)}"


def test_the_scan_would_catch_an_offender(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom master.allocation import x\nimport agent.ocpp as o\n")
    assert imported_modules(bad) == {"os", "master.allocation", "agent.ocpp"}
