"""`sshsim setup`: install the system packages the local target (and the tests) need.

Run as root it installs them with apt-get; otherwise it prints exactly what to install, so a
user without root knows what to ask for.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import click

from simulator.errors import EnvironmentProblem

RUNTIME_PACKAGES = ("openssh-server", "openssh-client", "xauth")
# fail2ban: its sshd corpora and fail2ban-regex are test oracles for the parser and generator.
# chromium: the HTML report is checked as a browser draws it (tests/test_html_report.py).
# putty-tools: real plink and psftp, against which their impersonations are measured
# (tests/test_real_clients.py; openssh-client's ssh and sftp come with the base packages).
TEST_PACKAGES = ("fail2ban", "chromium", "putty-tools")


def missing_packages(packages: tuple[str, ...]) -> list[str]:
    if shutil.which("dpkg-query") is None:
        return list(packages)
    missing = []
    for name in packages:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True)
        if "install ok installed" not in out.stdout:
            missing.append(name)
    return missing


@click.command("setup")
@click.option("--tests", is_flag=True,
              help="Also install what the test suite uses (fail2ban's corpora and fail2ban-regex, chromium, "
                   "putty-tools).")
def setup(tests: bool) -> None:
    """Install openssh-server and xauth (and with --tests, fail2ban, chromium and putty-tools) with apt-get."""
    wanted = RUNTIME_PACKAGES + (TEST_PACKAGES if tests else ())
    missing = missing_packages(wanted)
    if not missing:
        click.echo(f"sshsim setup: already installed: {' '.join(wanted)}")
        return
    command = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if os.geteuid() != 0:
        raise EnvironmentProblem(f"not root: install these packages as root: apt-get install {' '.join(missing)}")
    if shutil.which("apt-get") is None:
        raise EnvironmentProblem(f"apt-get not found: install with your package manager: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    click.echo(f"sshsim setup: installing {' '.join(missing)}")
    update = subprocess.run(["apt-get", "update", "-qq"], env=env)
    if update.returncode != 0:
        raise EnvironmentProblem("apt-get update failed; see its output above")
    result = subprocess.run(command, env=env)
    if result.returncode != 0:
        raise EnvironmentProblem(f"apt-get install {' '.join(missing)} failed; see its output above")
    # The package's own sshd must not be left running on port 22: sshsim runs private ones.
    click.echo("sshsim setup: done")
