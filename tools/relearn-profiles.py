#!/usr/bin/env python3
"""Regenerate the shipped profiles of the clients installable here from the real clients.

For maintainers (it needs the real clients of tools/real-clients.sh and the paramiko venvs of
the real-clients suite, which an installed sshsim does not ship): each real client runs the
real-clients suite's flows against `sshsim learn`'s endpoint, and the recording is written into
its shipped profile by the code of `sshsim learn --update` (simulator/learn/update.py): the facts
the client showed differently are rewritten, the comments and the facts no flow showed stay.
Prints the diff of each file; writes only with --write. Run from the repository's root:

    PYTHONPATH=$PWD python3 tools/relearn-profiles.py [--write] [PROFILE ...]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import difflib
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.learn.merge import build_profile  # noqa: E402
from simulator.learn.update import update_profile  # noqa: E402
from simulator.profiles import load_profile_file  # noqa: E402
from tests.realclients.recording import SHIPPED, record_real  # noqa: E402

FOLDER = ROOT / "simulator" / "data" / "profiles"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profiles", nargs="*", default=list(SHIPPED), help="shipped profile names")
    parser.add_argument("--write", action="store_true", help="rewrite the profile files")
    args = parser.parse_args()
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    for name in args.profiles:
        client, flows = SHIPPED[name]
        path = FOLDER / f"{name}.yaml"
        with tempfile.TemporaryDirectory(prefix="sshsim-relearn-") as work:
            conns = asyncio.run(record_real(client, flows, Path(work)))
        profile = load_profile_file(path)
        learned = build_profile(conns, name, today)
        text = path.read_text(encoding="utf-8")
        result = update_profile(text, str(path), profile, conns, learned)
        sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), result.text.splitlines(True),
                                                   f"a/{path.relative_to(ROOT)}", f"b/{path.relative_to(ROOT)}"))
        print(f"== {name}: {result.agreed} facts agree, {len(result.applied)} rewritten, "
              f"{len(result.left)} left for review", file=sys.stderr)
        for line in result.applied:
            print(f"  rewritten  {line}", file=sys.stderr)
        for line in result.left:
            print(f"  review     {line}", file=sys.stderr)
        for line in learned.data["learned"]["observations"]:
            print(f"  observed   {line}", file=sys.stderr)
        if args.write:
            path.write_text(result.text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
