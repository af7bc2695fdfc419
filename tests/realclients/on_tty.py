"""Run a program in a new session whose controlling terminal is the given pty (argv: TTY PROGRAM
ARGS...), keeping the caller's stdin, stdout and stderr.

PuTTY's tools read a password from the terminal (/dev/tty), never from stdin, and only when
they have one; this gives plink a terminal for its prompts while its command's stdin stays what
the caller made it (/dev/null: the exec flow's EOF). A separate process rather than a
preexec_fn: the test process has threads, and a fork that runs Python before exec may hang on
a lock one of them held. Used by tests/realclients/harness.py only.
"""

import os
import sys

tty, program = sys.argv[1], sys.argv[2:]
os.setsid()
# The first terminal a session leader opens becomes its controlling terminal.
os.close(os.open(tty, os.O_RDWR))
os.execvp(program[0], program)
