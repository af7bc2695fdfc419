"""The non-Python files the wheel carries (everything else about the package is in pyproject.toml).

The Docker build context (docker/) and the scenario library (scenarios/) are top-level folders of
the source tree, where the README and the tests name them; a build copies both into the package
as simulator/share/ (simulator/shipped.py finds either copy), so a plain `pip install .` into a
virtual environment has them.
"""

import importlib.util
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _shipped_names() -> tuple:
    """simulator/shipped.py's list, read from the file (the package is not importable here)."""
    spec = importlib.util.spec_from_file_location("_sshsim_shipped", HERE / "simulator" / "shipped.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SHIPPED


class BuildWithShipped(build_py):
    """build_py, plus docker/ and scenarios/ copied under simulator/share/ of the build."""

    def run(self) -> None:
        super().run()
        for name in _shipped_names():
            source = HERE / name
            if not source.is_dir():
                continue
            target = Path(self.build_lib) / "simulator" / "share" / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(source, target, symlinks=False,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))


setup(cmdclass={"build_py": BuildWithShipped})
