"""sshsim as a user installs it: a wheel built from the tree, installed into a fresh virtual
environment, run from a folder that is not the checkout. The wheel must carry what the package
reads at run time besides Python: the Docker build files, podman-engine.sh and the scenario
library; `sshsim init` copies the library out; a `generate` spec written anywhere finds the
shipped building blocks. Real sshd, real wheel: the dependencies come from the
interpreter running the tests (--system-site-packages), the wheel itself with --no-deps (its build
backend, setuptools, comes from the package index pip is configured with, as for any build).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, needs_local_sshd

pytestmark = pytest.mark.slow

SPEC = """\
name: from-the-install
engine: synthetic
seed: 7
window: {start: "2024-03-11T00:00:00", duration: 10m, timezone: UTC}
rate: {per_minute: 2, curve: flat}
users:
  - {name: alice, uid: 1001}
mix:
  - {name: key-exec, scenario: publickey-exec.yaml, profiles: [openssh-9.6]}
"""


def _tracked_tree(dest: Path) -> None:
    """The checkout's tracked files (what a clone has), so a build leaves nothing in the tree."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, names.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a fresh venv with the built wheel installed."""
    work = tmp_path_factory.mktemp("install")
    src, wheels, venv = work / "src", work / "wheels", work / "venv"
    _tracked_tree(src)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                            str(src), "-w", str(wheels)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next(wheels.glob("sshsim-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("simulator/share/docker/podman-engine.sh", "simulator/share/docker/Dockerfile.debian-12",
                   "simulator/share/docker/sshsim-entrypoint.sh", "simulator/share/scenarios/library/publickey-shell.yaml",
                   "simulator/share/scenarios/generate/publickey-exec.yaml", "simulator/data/events/kex.yaml"):
        assert needed in names, needed
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed",
                          "--disable-pip-version-check", str(wheel)], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return venv / "bin"


def _sshsim(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("PYTHONPATH", "SSHSIM_DOCKER_DIR")}
    return subprocess.run([str(bin_dir / "sshsim"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_install_is_its_own(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run([str(installed / "python"), "-c",
                            "import simulator.shipped as s, simulator.target.images as i;"
                            "print(s.__file__); print(s.shipped('scenarios')); print(i.docker_dir())"],
                           cwd=tmp_path, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    module, scenarios, docker = where.stdout.split()
    venv = str(installed.parent)
    assert module.startswith(venv) and scenarios.startswith(venv) and docker.startswith(venv), where.stdout


def test_init_copies_the_library_and_never_overwrites(installed: Path, tmp_path: Path) -> None:
    out = _sshsim(installed, tmp_path, "init", "mine")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "mine" / "library" / "publickey-shell.yaml").read_text() == \
        (ROOT / "scenarios" / "library" / "publickey-shell.yaml").read_text()
    (tmp_path / "mine" / "library" / "publickey-shell.yaml").write_text("# mine\n")
    again = _sshsim(installed, tmp_path, "init", "mine")
    assert again.returncode == 2 and again.stderr.startswith("sshsim: error: mine/") and "--force" in again.stderr
    assert (tmp_path / "mine" / "library" / "publickey-shell.yaml").read_text() == "# mine\n"
    assert _sshsim(installed, tmp_path, "init", "mine", "--force").returncode == 0
    assert (tmp_path / "mine" / "library" / "publickey-shell.yaml").read_text() != "# mine\n"


@needs_local_sshd
def test_library_scenario_and_generate_run_from_the_install(installed: Path, tmp_path: Path) -> None:
    assert _sshsim(installed, tmp_path, "init", "lib").returncode == 0
    run = _sshsim(installed, tmp_path, "run", "lib/library/publickey-shell.yaml", "--report", "json", "r.json")
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads((tmp_path / "r.json").read_text())["passed"] == 1
    # A spec outside any checkout names a shipped building block by file name.
    (tmp_path / "spec.yaml").write_text(SPEC)
    gen = _sshsim(installed, tmp_path, "generate", "spec.yaml", "-o", "day.log")
    assert gen.returncode == 0, gen.stdout + gen.stderr
    lines = (tmp_path / "day.log").read_text().splitlines()
    labels = (tmp_path / "day.log.labels.jsonl").read_text().splitlines()
    assert len(labels) >= 5 and any("Accepted publickey for alice" in line for line in lines)
