"""Whether output is coloured, and the colouring itself: decided in one place for every command.

Colour goes to a terminal only, never when NO_COLOR is set to a non-empty value
(https://no-color.org), and --color/--no-color overrides both. The stream matters: a report
written to stderr is coloured when stderr is a terminal, whatever stdout is.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

# The option every command that colours takes (default None: decide by the stream).
colour_option = click.option("--color/--no-color", "color", default=None,
                             help="Colour (default: on a terminal, unless NO_COLOR is set).")


def use_colour(choice: bool | None, *, err: bool = False) -> bool:
    """The flag when given, else whether the stream the text goes to is a terminal without NO_COLOR."""
    if choice is not None:
        return choice
    stream = sys.stderr if err else sys.stdout
    return stream.isatty() and not os.environ.get("NO_COLOR")


def paint(text: str, enabled: bool, **style: Any) -> str:
    """`text` with click's `style` (fg=, bold=...) when colour is on, else unchanged."""
    return click.style(text, **style) if enabled else text


# C0 control characters and DEL, each shown as a Python escape (tab, line ends included): a log
# is untrusted, and an ESC or a carriage return written to a terminal as it is would move the
# cursor, recolour or rewrite what the reader sees.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(32), 127)}


def printable(text: str) -> str:
    """`text` with control characters escaped, for a line shown to a person."""
    return text.translate(_CONTROLS) if not text.isprintable() else text
