"""Where the files that ship with sshsim but are not Python live: the Docker build context
(docker/, with podman-engine.sh) and the scenario library (scenarios/).

In a source tree they are the top-level folders; an installed wheel carries a copy of each
under simulator/share/ (setup.py copies them in at build time), so `pip install .` into a
virtual environment works without the checkout. The wheel's copy wins: an installed sshsim
must not pick up folders from whatever directory it happens to be imported beside.
"""

from __future__ import annotations

from pathlib import Path

# The folders shipped: name in the source tree = name under simulator/share/.
SHIPPED = ("docker", "scenarios")
_PACKAGE = Path(__file__).resolve().parent


def shipped(name: str) -> Path | None:
    """The shipped folder `name` (one of SHIPPED), or None where neither copy exists."""
    if name not in SHIPPED:
        raise ValueError(name)
    for candidate in (_PACKAGE / "share" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    return None
