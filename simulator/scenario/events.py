"""Event names a scenario may use: those of the sshd message catalogue (simulator/data/events).

The parser matches lines against the hand-written topic files *and* the long tail extracted from
openssh-portable (events/source/*.yaml), so a scenario must be allowed to name both: otherwise a
line the parser reports (e.g. "X11 forwarding disabled in server configuration file.", event
session.session_setup_x11fwd.x11_forwarding_disabled) could never be expected.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

# Names the verifier derives itself rather than reading from one log line.
DERIVED_EVENTS: frozenset[str] = frozenset()

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _catalogue_files() -> Iterator[Any]:
    """The topic files first, then the extracted long tail under source/ (as the parser reads them)."""
    folder = resources.files("simulator.data").joinpath("events")
    for sub in (folder, folder.joinpath("source")):
        if not sub.is_dir():
            continue
        for entry in sorted(sub.iterdir(), key=lambda e: e.name):
            if entry.name.endswith((".yaml", ".yml")) and entry.is_file():
                yield entry


@lru_cache(maxsize=1)
def known_event_names() -> frozenset[str]:
    """Every `event` name in the catalogue's data files."""
    names: set[str] = set(DERIVED_EVENTS)
    for entry in _catalogue_files():
        try:
            data = yaml.load(entry.read_text(encoding="utf-8"), Loader=_LOADER)
        except yaml.YAMLError as exc:
            # The product's own data is broken: a bug, not the scenario writer's problem.
            raise RuntimeError(f"event catalogue file events/{entry.name} is not valid YAML: "
                               f"{str(exc).splitlines()[0]}") from None
        items = data.get("events", data) if isinstance(data, dict) else data
        for item in items or []:
            if isinstance(item, dict) and "event" in item:
                names.add(item["event"])
    return frozenset(names)
