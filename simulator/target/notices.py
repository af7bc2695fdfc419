"""One-line notices of what sshsim changed in what it was asked (stderr, once per process).

A target is made once per scenario, and `generate` makes one per recording: the same notice
(a replaced `Port 22`, a version given twice) is said once, not once per server.
"""

from __future__ import annotations

import sys

_said: set[str] = set()


def say_once(text: str) -> None:
    """Print `text` on stderr unless this process said it already."""
    if text not in _said:
        _said.add(text)
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
