"""Per OpenSSH version CI builds: a cold build, start-to-ready of its sshd, one full connection;
the machine's own sshd measured the same way in the same run is the baseline.

For each version marked `ci: true` in simulator/data/openssh/versions.yaml:

- build_s_<version>: `ensure_sshd` from the release tarball already in the cache (fetched first
  when it is not: fetching is not timed) into an empty temp cache: configure, make, install.
- ready_ms_<version>: a LocalSshd with that sshd (as `--target local:VERSION` makes), from start() to ready.
- conn_ms_<version>: scenarios/library/password-success.yaml (one password login through PAM and
  one command) run through the ScenarioRunner against a started LocalSshd, until sshd has logged
  it all.

Then ready_ms_system and conn_ms_system for the system sshd, and ratio_ready_<version> and
ratio_conn_<version> (the version's figure divided by the system's). `--skip-build` measures the
versions already built in the cache instead of cold builds (those take minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

from _common import QUICK, Clock, emit, median

from simulator.builds.build import ensure_sshd
from simulator.builds.cache import installed_sshd
from simulator.builds.tarballs import release_tarball, tarball_dir
from simulator.builds.versions import ci_versions, known_versions
from simulator.driver.runner import run_scenario
from simulator.scenario import load_scenarios
from simulator.target.base import ServerSpec
from simulator.target.local import LocalSshd

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "library" / "password-success.yaml"
STARTS = 3 if QUICK else 10
CONNECTIONS = 3 if QUICK else 10


def local_tarball(version: str) -> Path:
    """The release tarball in the cache, fetched (and checked) first when it is not there."""
    known = known_versions()[version]
    path = tarball_dir() / known.upstream_file
    if not path.is_file():
        with tempfile.TemporaryDirectory() as work, open(os.devnull, "w") as log:
            path = release_tarball(version, known, None, Path(work), log, lambda _: None)
    return path


def cold_build(version: str, tarball: Path, cache: Path) -> tuple[float, Path]:
    saved = os.environ.get("SSHSIM_CACHE")
    os.environ["SSHSIM_CACHE"] = str(cache)
    try:
        with Clock() as clock:
            sshd = ensure_sshd(version, tarball=tarball, progress=lambda _: None)
    finally:
        if saved is None:
            os.environ.pop("SSHSIM_CACHE", None)
        else:
            os.environ["SSHSIM_CACHE"] = saved
    return clock.wall, sshd


def ready_ms(sshd: str | None) -> float:
    """Median start-to-ready of `sshd` (None: the system's)."""
    times = []
    LocalSshd(ServerSpec(log_level="INFO"), sshd=sshd).start().stop()  # warm-up: imports, the kept host keys read
    for _ in range(STARTS):
        with Clock() as clock:
            server = LocalSshd(ServerSpec(log_level="INFO"), sshd=sshd).start()
        times.append(clock.wall * 1000)
        server.stop()
    return median(times)


def conn_ms(sshd: str | None) -> float:
    scenario = load_scenarios(str(SCENARIO))[0]
    times = []
    with LocalSshd(scenario.server, sshd=sshd) as server:
        asyncio.run(run_scenario(scenario, server))  # warm-up: imports, key loading
        for _ in range(CONNECTIONS):
            with Clock() as clock:
                result = asyncio.run(run_scenario(scenario, server))
            if result.errors:
                raise SystemExit(f"driver errors against {server.version}: {result.errors[:3]}")
            times.append(clock.wall * 1000)
    return median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-build", action="store_true",
                        help="measure the versions already built in the cache instead of cold builds")
    parser.add_argument("--versions", default=",".join(ci_versions()), help="comma-separated (default: CI's)")
    args = parser.parse_args()
    versions = [v for v in args.versions.split(",") if v]
    with tempfile.TemporaryDirectory(prefix="sshsim-bench-cache-") as temp_cache:
        sshds: dict[str, str] = {}
        for version in versions:
            if args.skip_build:
                built = installed_sshd(version)
                if built is None:
                    print(f"# {version}: not built in the cache (sshsim build-sshd {version}); skipped",
                          file=sys.stderr)
                    continue
                sshds[version] = str(built)
                continue
            seconds, sshd = cold_build(version, local_tarball(version), Path(temp_cache))
            emit(f"build_s_{version}", seconds, 1)
            sshds[version] = str(sshd)
        base_ready, base_conn = ready_ms(None), conn_ms(None)
        print(f"# median of {STARTS} starts and {CONNECTIONS} connections ({SCENARIO.name}) each; "
              f"{os.cpu_count()} cores")
        emit("ready_ms_system", base_ready)
        emit("conn_ms_system", base_conn)
        for version, sshd in sshds.items():
            ready, conn = ready_ms(sshd), conn_ms(sshd)
            emit(f"ready_ms_{version}", ready)
            emit(f"conn_ms_{version}", conn)
            emit(f"ratio_ready_{version}", ready / base_ready)
            emit(f"ratio_conn_{version}", conn / base_conn)


if __name__ == "__main__":
    main()
