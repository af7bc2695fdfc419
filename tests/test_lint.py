"""The package is lint-clean and type-clean, as part of the test suite (which is what CI runs).

The rule sets and the type checker's settings live in pyproject.toml ([tool.ruff], [tool.mypy]);
both tools are in the `test` extras. Each runs as a subprocess of this interpreter, so the
versions checked are the ones installed with the package.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing_in_simulator() -> None:
    done = _run("ruff", "check", "--no-fix", "simulator")
    assert done.returncode == 0, f"ruff check simulator (exit {done.returncode}):\n{done.stdout}{done.stderr}"


def test_mypy_finds_nothing_in_simulator() -> None:
    done = _run("mypy", "simulator")
    assert done.returncode == 0, f"mypy simulator (exit {done.returncode}):\n{done.stdout}{done.stderr}"
    assert "Success: no issues found" in done.stdout, done.stdout
