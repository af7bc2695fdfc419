"""Which optional C accelerators to use (see setup.py).

Each accelerator has a pure-Python twin with the same results. ``SSHSIM_PURE_PYTHON=1`` makes
every hot path take the Python twin (tests compare the two); ``SSHSIM_REQUIRE_SPEEDUPS=1`` turns
a missing or broken extension into an import error, so that CI can never fall back to the slow
path without anyone noticing.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

PURE_PYTHON = os.environ.get("SSHSIM_PURE_PYTHON", "") not in ("", "0")
REQUIRED = os.environ.get("SSHSIM_REQUIRE_SPEEDUPS", "") not in ("", "0")


class SpeedupsMissing(ImportError):
    """SSHSIM_REQUIRE_SPEEDUPS is set and a C accelerator did not import."""


def load(name: str) -> ModuleType | None:
    """The extension module ``name``, or None when it is absent or Python is forced."""
    if PURE_PYTHON:
        return None
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if REQUIRED:
            raise SpeedupsMissing(
                f"{name} is not built ({exc}); reinstall with a C compiler: pip install -e ."
            ) from exc
        return None
