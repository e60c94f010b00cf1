"""The import rules of docs/ARCHITECTURE.md hold for the source tree (tools/import_graph.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_graph(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "import_graph.py"), "--root", str(root), "--depth", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_no_import_rule_is_broken() -> None:
    result = run_graph(ROOT / "ros2_ctxpose")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken: 0" in result.stdout


def test_a_broken_rule_is_reported(tmp_path: Path) -> None:
    package = tmp_path / "ros2_ctxpose"
    (package / "core").mkdir(parents=True)
    (package / "ros").mkdir()
    for init in (package / "__init__.py", package / "core" / "__init__.py", package / "ros" / "__init__.py"):
        init.write_text("")
    (package / "core" / "model.py").write_text("from ros2_ctxpose.ros import node\n")
    (package / "ros" / "node.py").write_text("import torch\n")
    result = run_graph(package)
    assert result.returncode == 1
    assert "broken: 2" in result.stdout and "BROKEN ros2_ctxpose.core.model" in result.stdout
