"""Optional C accelerators for the two hot paths that must run at millions of lines a second,
and the non-Python files the wheel carries.

Each accelerator has a pure-Python twin that gives the same results (tests compare them line by
line), so a machine without a C compiler still installs and runs sshsim, only slower: the
extensions are built with ``optional=True``.

The Docker build context (docker/) and the scenario library (scenarios/) are top-level folders of
the source tree, where the README and the tests name them; a build copies both into the package
as simulator/share/ (simulator/shipped.py finds either copy). Everything else about the package
lives in pyproject.toml.
"""

import importlib.util
import shutil
from glob import glob
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

FLAGS = ["-O2", "-std=c11", "-Wall", "-Wno-missing-field-initializers"]
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


setup(
    cmdclass={"build_py": BuildWithShipped},
    ext_modules=[
        # parse + group: syslog lines -> Event objects, and the grouping fast path
        Extension("simulator.logs._speedups", sorted(glob("simulator/logs/csrc/*.c")),
                  depends=["simulator/logs/csrc/speedups.h"], extra_compile_args=FLAGS, optional=True),
        # generate: the synthetic engine's line assembly (stamps + bodies) into the output
        Extension("simulator.generate._emit", ["simulator/generate/_emit.c"],
                  extra_compile_args=FLAGS, optional=True),
    ],
)
