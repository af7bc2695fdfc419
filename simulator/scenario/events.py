"""Event names a scenario may use: those of the sshd message catalogue (simulator/data/events)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml

# Names the verifier derives itself rather than reading from one log line.
DERIVED_EVENTS = frozenset()


@lru_cache(maxsize=1)
def known_event_names() -> frozenset[str]:
    """Every `event` name in the catalogue's data files."""
    names: set[str] = set(DERIVED_EVENTS)
    folder = resources.files("simulator.data").joinpath("events")
    for entry in folder.iterdir():
        if not entry.name.endswith((".yaml", ".yml")):
            continue
        data = yaml.safe_load(entry.read_text())
        items = data.get("events", data) if isinstance(data, dict) else data
        for item in items or []:
            if isinstance(item, dict) and "event" in item:
                names.add(item["event"])
    return frozenset(names)
