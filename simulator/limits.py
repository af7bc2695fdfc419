"""Every bound sshsim puts on untrusted input, in one place.

Logs, scenarios, generate specs and sshd configs come from other people (a customer's log, a
scenario off the internet). None of them may make sshsim use unbounded memory or time: each
bound here ends the work with a one-line error (exit 2) that states the limit, or, where real
input can exceed it harmlessly, keeps a truncated copy and says so. The numbers are chosen far
above anything real input needs, and stated in docs/limits.md.
"""

from __future__ import annotations

# -- logs -----------------------------------------------------------------------------------
# sshd formats every message into a 1,024-byte buffer (log.c MSGBUFSIZ); with a syslog prefix
# a real line stays well under 2 KiB. A longer line is kept, cut to this many characters, and
# parses as an `unknown` event.
MAX_LINE_CHARS = 8192
# A "line" with no end in this many bytes is not a text log (/dev/zero, a binary file): the
# read stops with an error instead of buffering it.
MAX_UNENDED_LINE_BYTES = 16 * 1024 * 1024
# How much of one log line an error message or report quotes.
QUOTE_CHARS = 300
# What `diff`, `verify`, `infer` and `replay` hold of one log (they need all of it at once;
# `parse` streams any length). `diff` takes about 2 KB a line of each log (two logs of 276k
# lines: 1 GB), so two logs at the limit stay within about 5 GB.
MAX_HELD_LOG_LINES = 1_000_000
MAX_HELD_LOG_CHARS = 256 * 1024 * 1024


def quote(text: str, limit: int = QUOTE_CHARS) -> str:
    """`text` as a message or report may repeat it: its first `limit` characters, and an
    ellipsis when that is not all of it."""
    return text if len(text) <= limit else text[:limit] + "\u2026"


# -- scenario and spec files ----------------------------------------------------------------
MAX_SOURCE_BYTES = 1024 * 1024          # a scenario, spec, profile or include, as read
MAX_RENDERED_CHARS = 4 * 1024 * 1024    # what one jinja2 rendering may produce
MAX_RENDER_SECONDS = 10.0               # one rendering, wall clock
MAX_TEMPLATE_WORK_CHARS = 64 * 1024 * 1024  # all values one rendering makes, in characters
MAX_TEMPLATE_INT_BITS = 4096            # a number a template computes (10 ** 1000 fits)
MAX_YAML_DEPTH = 64                     # nested mappings and lists
MAX_YAML_NODES = 200_000                # nodes after alias expansion (billion laughs)
MAX_MATRIX_CELLS = 1000                 # scenarios one file may expand to
MAX_OUTPUT_NAME_CHARS = 120            # a file name made from a scenario name (`run --log-dir`)
MAX_WAIT_SECONDS = 3600.0               # any start:, timeout or wait in a scenario
MAX_SFTP_PUT_BYTES = 64 * 1024 * 1024   # an SFTP upload a scenario makes up (`put: {size: N}`)

# -- a user's sshd_config (--sshd-config, server.sshd_config_file) ---------------------------
MAX_INCLUDE_DEPTH = 16                  # nested Include files (sshd's own limit is 16 too)
MAX_INCLUDED_FILES = 256                # files all Include lines of one config read together

# -- generate specs -------------------------------------------------------------------------
# `sshsim generate` plans a corpus as arrays with a row per connection, and the writer keeps a
# few numbers per connection and one per line until the end (about 200 bytes a connection and
# 8 a line: benchmarks/bench_generate.py --memory). These caps keep one run below about
# 300 MB (measured at the caps: 280 MB for 1 M connections at INFO, 160 MB for 4.8 M lines at
# DEBUG3, with the Python writer; less with the C one). The example spec
# (scenarios/generate/bruteforce-mix.yaml) is 3,100 connections and 13,000 lines a day.
MAX_GENERATE_CONNECTIONS = 1_000_000    # the window's mean rate × its length + every burst's most
MAX_GENERATE_LINES = 5_000_000          # lines of the corpus, known once each kind is recorded
MAX_REAL_ENGINE_CONNECTIONS = 10_000    # `--engine real` runs (and keeps) every connection: sshd time
MAX_GENERATE_BURSTS = 10_000            # burst `count`s added up: an address of its own each
MAX_BURST_CONCURRENT = 64               # a burst's `concurrent`: sockets held open per recording
MAX_POOL_HOSTS = 100_000                # `hosts` of one source pool
MAX_GENERATE_SECONDS = 366 * 86400.0    # a window, a session held open, a gap within a burst
MAX_GENERATE_WEIGHT = 1e6               # a weight or curve value (only their ratios matter)
GENERATE_YEARS = (1970, 9998)           # the window starts in these years (the log's time stamps)
# `sshsim detect` reads a corpus whole, and crowdsec's dump of what each parser made of each line
# (about 3 kB a line, read as one YAML document): 200,000 lines keep a cell below about 1 GB.
MAX_DETECT_LINES = 200_000

# A client KEXINIT read by the capture listener (simulator/driver/wire.py): RFC 4253 section 6.1
# says implementations need only take packets of 35000 bytes.
MAX_KEXINIT = 35000
# `sshsim learn` (simulator/learn/hook.py): what one recorded connection keeps. A client that
# streams for ever must not fill memory: packets past the count are counted, not kept; channel
# data is kept as its first bytes (only its length matters), any other packet up to the cap (a
# KEXINIT is a few KB).
MAX_LEARN_PACKETS = 20_000
MAX_LEARN_PAYLOAD = 35000
LEARN_DATA_BYTES = 16
# `sshsim learn`'s exec of `sshsim-learn-data N` answers N bytes (to record a client's window
# adjusts) up to this; its SFTP server takes as much in uploads, all connections together.
MAX_LEARN_DATA_OUTPUT = 16 * 1024 * 1024
# A JSON run report read back to name a diff's connections (`sshsim diff --names-a/--names-b`).
MAX_REPORT_BYTES = 16 * 1024 * 1024

# -- OpenSSH source builds (`sshsim build-sshd`) --------------------------------------------
# An OpenSSH portable release tarball is about 2 MB and unpacks to about 12 MB in 700 files.
MAX_TARBALL_BYTES = 64 * 1024 * 1024    # a release tarball read, copied or downloaded
MAX_SOURCE_TREE_BYTES = 256 * 1024 * 1024  # what one tarball unpacks to (a compression bomb stops here)
MAX_SOURCE_TREE_FILES = 20_000          # members of one tarball
# A kept host key read back from sshsim's cache (simulator/target/hostkeys.py): an RSA-16384 key in
# OpenSSH form is about 12 KiB; anything larger is not one of ours and is made again.
MAX_HOST_KEY_BYTES = 16384
