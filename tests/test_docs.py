"""The design notes in docs/ stay true to the repository they describe.

They name files, tests, bounds and measured fingerprints; each of those is checked here against
the code and data, so a rename or a changed value fails a test instead of leaving a stale page.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from simulator import limits

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
NOTES = [*PAGES, ROOT / "SECURITY.md"]
PROFILE_DIR = ROOT / "simulator" / "data" / "profiles"
FINGERPRINTS = DOCS / "client-fingerprints.md"

# A repository path in backticks: a top-level folder of the repository, then a path.
REPO_PATH = re.compile(r"`((?:simulator|tests|benchmarks|docker|scenarios|docs)/[A-Za-z0-9_./-]*[A-Za-z0-9_/])")
# A test named in backticks, bare or as tests/FILE.py::NAME.
TEST_NAME = re.compile(r"`(?:tests/(?P<file>test_\w+\.py)::)?(?P<name>test_\w+)`")


def _table_rows(text: str) -> list[list[str]]:
    """The body rows of every Markdown table in `text`, as lists of stripped cells."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.fullmatch(r"\|[\s|:-]+\|", line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _test_functions() -> dict[str, set[str]]:
    """Test function names defined in each tests/test_*.py."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found[path.name] = {node.name for node in ast.walk(tree)
                            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                            and node.name.startswith("test_")}
    return found


def test_index_lists_every_page() -> None:
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in PAGES if p.name != "README.md" and f"]({p.name})" not in index]
    assert not missing, f"docs/README.md does not link {missing}"


@pytest.mark.parametrize("page", NOTES, ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    targets = [t for t in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text) if "://" not in t]
    broken = [t for t in targets if not (page.parent / t).exists()]
    assert not broken, f"{page.name}: links to missing {broken}"


@pytest.mark.parametrize("page", NOTES, ids=lambda p: p.name)
def test_named_paths_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    missing = sorted({p for p in REPO_PATH.findall(text) if not (ROOT / p).exists()})
    assert not missing, f"{page.name} names paths that do not exist: {missing}"


@pytest.mark.parametrize("page", NOTES, ids=lambda p: p.name)
def test_named_tests_exist(page: Path) -> None:
    defined = _test_functions()
    everywhere = set().union(*defined.values())
    missing = []
    for match in TEST_NAME.finditer(page.read_text(encoding="utf-8")):
        name, file = match.group("name"), match.group("file")
        if name not in (defined.get(file, set()) if file else everywhere):
            missing.append(f"{file}::{name}" if file else name)
    assert not missing, f"{page.name} names tests that do not exist: {missing}"


def test_limits_page_matches_limits_module() -> None:
    """Every bound in simulator/limits.py is on docs/limits.md with its current value."""
    rows = {row[0].strip("`"): row for row in _table_rows((DOCS / "limits.md").read_text(encoding="utf-8"))
            if row and row[0].startswith("`")}
    names = {n for n in vars(limits) if n.isupper() and not n.startswith("_")}
    assert names == set(rows), (f"only in limits.py: {sorted(names - set(rows))}; "
                                f"only in docs/limits.md: {sorted(set(rows) - names)}")
    for name in sorted(names):
        value = getattr(limits, name)
        if isinstance(value, tuple):  # a range, written as Python writes it
            assert rows[name][1].strip() == str(value), f"docs/limits.md {name}: {rows[name][1]} != {value}"
            continue
        stated = rows[name][1].split()[0].replace(",", "").replace("_", "")
        assert float(stated) == value, f"docs/limits.md {name}: {stated} != {value}"


def test_measured_fingerprints_match_the_profiles() -> None:
    """docs/client-fingerprints.md lists exactly the profiles whose HASSH was measured (those
    with a `hassh_measured` key)."""
    measured: set[str] = set()
    for path in sorted(PROFILE_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if data.get("hassh_measured"):
            measured.add(path.stem)
    text = FINGERPRINTS.read_text(encoding="utf-8")
    section = text.split("## Measured, derived, guessed", 1)[1]
    listed = {row[0].strip("`") for row in _table_rows(section) if row and row[0].startswith("`")}
    assert listed == measured, (f"measured in profiles only: {sorted(measured - listed)}; "
                                f"in the page only: {sorted(listed - measured)}")


def test_nothing_cites_a_document_outside_the_repository() -> None:
    """Comments, data and tests cite docs/, not the design document the project started from."""
    word = "DESIGN" + ".md"
    offenders = []
    for folder in ("simulator", "tests", "scenarios", "benchmarks", "docker", "docs"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".yaml", ".yml", ".md", ".j2", ".json", ".sh", ".c", ".h"):
                if word in path.read_text(encoding="utf-8", errors="replace"):
                    offenders.append(str(path.relative_to(ROOT)))
    for name in ("README.md", "SECURITY.md", "pyproject.toml"):
        if word in (ROOT / name).read_text(encoding="utf-8"):
            offenders.append(name)
    assert not offenders, f"cite docs/ instead: {offenders}"
