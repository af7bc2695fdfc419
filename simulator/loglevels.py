"""sshd's log levels, named once for every module that needs them.

sshd's LogLevel (log.c log_level_names) from least to most verbose; "DEBUG" is the config
alias of DEBUG1. A message is written at one of the levels after QUIET, and at DEBUG levels
its text starts with "debug1: " etc. Nothing here reads input: plain data at the bottom.
"""

from __future__ import annotations

# Least verbose first: a server at LEVELS[i] writes the messages of LEVELS[1..i].
LEVELS = ("QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG1", "DEBUG2", "DEBUG3")
RANK = {name: i for i, name in enumerate(LEVELS)}
# What sshd_config's LogLevel accepts, in sshd's own order (DEBUG = DEBUG1).
CONFIG_VALUES = LEVELS[:RANK["DEBUG1"]] + ("DEBUG",) + LEVELS[RANK["DEBUG1"]:]
# The levels a message can be logged at.
MESSAGE_LEVELS = LEVELS[RANK["FATAL"]:]
