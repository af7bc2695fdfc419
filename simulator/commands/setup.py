"""`sshsim setup`: install the system packages the local target (and the tests) need.

Run as root it installs them with apt-get; otherwise it prints exactly what to install, so a
user without root knows what to ask for. `--build` adds what `sshsim build-sshd` compiles with;
`--tests` includes it and then builds the OpenSSH versions CI tests (simulator/data/openssh/
versions.yaml, `ci: true`), so the suite finds them built.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import click

from simulator.errors import EnvironmentProblem

RUNTIME_PACKAGES = ("openssh-server", "openssh-client", "xauth")
# fail2ban: its sshd corpora and fail2ban-regex are test oracles for the parser and generator.
# chromium: the HTML report is checked as a browser draws it (tests/test_html_report.py).
# putty-tools: real plink and psftp, against which their impersonations are measured
# (tests/test_real_clients.py; openssh-client's ssh and sftp come with the base packages).
# crowdsec: `sshsim detect` replays corpora through it (tests/test_detect.py). Its postinst
# registers with the Central API over the network unless an opt-out file exists first
# (README.Debian): without network the install fails, so setup writes that file when it is absent.
# `sshsim detect` never uses the system's crowdsec (a private config and loopback port of its own);
# where systemd runs, Debian starts crowdsec.service as it does for any install.
TEST_PACKAGES = ("fail2ban", "chromium", "putty-tools", "crowdsec")
CROWDSEC_CAPI = Path("/etc/crowdsec/online_api_credentials.yaml")
# What `sshsim build-sshd` compiles OpenSSH with (PAM, OpenSSL and zlib from the system); dpkg-dev
# lets `apt-get source` fetch a release tarball from Debian's source archive.
BUILD_PACKAGES = ("build-essential", "libpam0g-dev", "libssl-dev", "zlib1g-dev", "dpkg-dev")


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
@click.option("--build", is_flag=True,
              help="Also install what `sshsim build-sshd` compiles OpenSSH with (build-essential, libpam0g-dev, "
                   "libssl-dev, zlib1g-dev, dpkg-dev).")
@click.option("--tests", is_flag=True,
              help="Also install what the test suite uses (fail2ban's corpora and fail2ban-regex, chromium, "
                   "putty-tools, crowdsec, the --build packages) and build the OpenSSH versions CI tests.")
def setup(build: bool, tests: bool) -> None:
    """Install openssh-server and xauth (--build: the compilers and headers build-sshd needs; --tests: those,
    fail2ban, chromium, putty-tools and crowdsec, then build the OpenSSH versions the tests use) with apt-get."""
    wanted = RUNTIME_PACKAGES + (BUILD_PACKAGES if build or tests else ()) + (TEST_PACKAGES if tests else ())
    if tests and os.geteuid() == 0 and "crowdsec" in missing_packages(("crowdsec",)):
        crowdsec_offline()
    install(wanted)
    if tests:
        build_ci_versions()


def crowdsec_offline() -> None:
    """Debian's documented opt-out of crowdsec's Central API registration (a file holding a
    comment, written before the install), kept if the admin wrote one."""
    if not CROWDSEC_CAPI.exists():
        CROWDSEC_CAPI.parent.mkdir(parents=True, exist_ok=True)
        CROWDSEC_CAPI.write_text("# sshsim setup: no Central API registration (offline install; README.Debian)\n")


def build_ci_versions() -> None:
    """Build every version marked for CI (each returns at once when already built)."""
    # imported here: start-up cost: `sshsim setup` alone does not read the version table
    from simulator.builds.build import ensure_sshd
    from simulator.builds.versions import ci_versions

    for version in ci_versions():
        sshd = ensure_sshd(version)
        click.echo(f"sshsim setup: OpenSSH {version}: {sshd}")


def install(wanted: tuple[str, ...]) -> None:
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
