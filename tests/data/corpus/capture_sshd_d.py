"""Capture `sshd -d -e` output of the upstream builds into the corpus (dev tool, run as root).

    python tests/data/corpus/capture_sshd_d.py [VERSION...]    # default: every build in the cache

For each build of ~/.cache/sshsim/openssh/VERSION (sshsim build-sshd), runs its sshd in debug
mode (one connection, no fork, log on stderr) on a loopback port with a fresh host key and a
temporary authorized key for root, connects once with asyncssh (the key; one exec), and writes
what sshd wrote on stderr to tests/data/corpus/build-VERSION-sshd-d.log with a source line.
Annotate the new file afterwards (annotate.py). Everything temporary is removed on return.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncssh

HERE = Path(__file__).resolve().parent
BUILDS = Path(os.environ.get("SSHSIM_CACHE", Path.home() / ".cache" / "sshsim")) / "openssh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def login(port: int, key: asyncssh.SSHKey) -> None:
    async with asyncssh.connect("127.0.0.1", port, username="root", known_hosts=None, client_keys=[key],
                                agent_path=None, preferred_auth=["publickey"]) as conn:
        await conn.run("true")


def capture(version: str) -> Path:
    prefix = BUILDS / version
    tmp = Path(tempfile.mkdtemp(prefix="sshsim-sshd-d-"))
    proc = None
    try:
        host = asyncssh.generate_private_key("ssh-ed25519")
        host.write_private_key(tmp / "host_ed25519")
        os.chmod(tmp / "host_ed25519", 0o600)
        user = asyncssh.generate_private_key("ssh-ed25519")
        (tmp / "authorized_keys").write_text(user.export_public_key().decode())
        port = free_port()
        (tmp / "sshd_config").write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp}/host_ed25519\nPidFile {tmp}/sshd.pid\n"
            f"AuthorizedKeysFile {tmp}/authorized_keys\nPermitRootLogin yes\nStrictModes no\nUsePAM no\n"
            "PasswordAuthentication no\n"
        )
        proc = subprocess.Popen([str(prefix / "sbin" / "sshd"), "-d", "-e", "-f", str(tmp / "sshd_config")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        head = []
        for line in proc.stderr:  # until it listens (the one connection of -d is the login)
            head.append(line)
            if line.startswith("Server listening on"):
                break
        asyncio.run(login(port, user))
        _, rest = proc.communicate(timeout=20)
        out = "".join(head) + rest
        dest = HERE / f"build-{version}-sshd-d.log"
        dest.write_text(
            f"# source: captured here: the upstream {version} build (sshsim build-sshd), `sshd -d -e` on a loopback"
            " port, one asyncssh login as root with an Ed25519 key and one exec\n" + out, encoding="utf-8")
        return dest
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    versions = sys.argv[1:] or sorted(p.name for p in BUILDS.iterdir() if (p / "sbin" / "sshd").is_file())
    for version in versions:
        print(capture(version))
    return 0


if __name__ == "__main__":
    sys.exit(main())
