"""Event names a scenario may use: those of the sshd message catalogue (simulator/data/events).

The parser matches lines against the hand-written topic files *and* the long tail extracted from
openssh-portable (events/source/*.yaml), so a scenario must be allowed to name both: otherwise a
line the parser reports (e.g. "X11 forwarding disabled in server configuration file.", event
session.session_setup_x11fwd.x11_forwarding_disabled) could never be expected. The names come
from the catalogue the parser loads (one walk of its files, and its cache), never a second
reading of them.
"""

from __future__ import annotations

from functools import lru_cache

from simulator.logs.catalogue import default_catalogue


@lru_cache(maxsize=1)
def known_event_names() -> frozenset[str]:
    """Every `event` name in the catalogue."""
    return frozenset(default_catalogue().names())
