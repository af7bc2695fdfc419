"""Optional C accelerators for the two hot paths that must run at millions of lines a second.

Each has a pure-Python twin that gives the same results (tests compare them line by line), so a
machine without a C compiler still installs and runs sshsim, only slower: the extensions are
built with ``optional=True``. Everything else about the package lives in pyproject.toml.
"""

from glob import glob

from setuptools import Extension, setup

FLAGS = ["-O2", "-std=c11", "-Wall", "-Wno-missing-field-initializers"]

setup(
    ext_modules=[
        # parse + group: syslog lines -> Event objects, and the grouping fast path
        Extension("simulator.logs._speedups", sorted(glob("simulator/logs/csrc/*.c")),
                  depends=["simulator/logs/csrc/speedups.h"], extra_compile_args=FLAGS, optional=True),
        # generate: the synthetic engine's line assembly (stamps + bodies) into the output
        Extension("simulator.generate._emit", ["simulator/generate/_emit.c"],
                  extra_compile_args=FLAGS, optional=True),
    ],
)
