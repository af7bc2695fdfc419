"""One flow with the real asyncssh (no sshsim hooks): exec, shell, sftp or password.

argv: flow host port user key password. Used by tests/test_real_clients.py only.
"""

import asyncio
import sys

import asyncssh


async def main(flow: str, host: str, port: str, user: str, key: str, password: str) -> None:
    common = dict(username=user, known_hosts=None, agent_path=None)
    if flow == "password":
        answers = iter(["wrong-" + password, password])

        class Client(asyncssh.SSHClient):
            def password_auth_requested(self) -> str:
                return next(answers)

        async with asyncssh.connect(host, int(port), client_factory=Client, preferred_auth=["password"],
                                    client_keys=None, **common) as conn:
            await conn.run("true")
        return
    async with asyncssh.connect(host, int(port), client_keys=[key], **common) as conn:
        if flow == "exec":
            await conn.run("true")
        elif flow == "shell":
            # X11 to $DISPLAY; no Xauthority entry for it, so asyncssh makes up the cookie.
            await conn.run(input="exit\n", term_type="xterm", x11_forwarding=True)
        elif flow == "sftp":
            async with conn.start_sftp_client() as sftp:
                await sftp.listdir(".")


asyncio.run(main(*sys.argv[1:7]))
