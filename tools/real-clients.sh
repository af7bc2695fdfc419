#!/usr/bin/env bash
# The paramiko venvs tests/test_real_clients.py runs as real clients, one per version, made
# ahead of the test run (the tests make a missing one themselves, the same way:
# tests/realclients/harness.py venv_python). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - <<'PY'
from tests.realclients.harness import PARAMIKO, venv_python

for name in PARAMIKO:
    print(name, venv_python(name))
PY
