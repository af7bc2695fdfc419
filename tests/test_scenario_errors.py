"""Malformed scenarios: each gives one line naming the file, line, column and key path, and exit 2.

A scenario writer's mistake must be fixable from the message alone: where it is (file:line:col),
which key (connections[0].actions[0].session.x12), what is wrong and, where it can, what was meant.
Each case is checked twice: through the loader (the error's fields) and through the real CLI in a
subprocess (`sshsim run BAD.yaml`: exit 2, that one line on stderr, nothing else, no traceback).
No sshd is started: every one of these fails before a target would be.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from simulator.errors import BadInputError
from simulator.scenario import load_scenarios


@dataclass(frozen=True)
class Bad:
    """A malformed scenario and the one error line it must give (without "FILE:" in front)."""

    id: str
    text: str | bytes | None  # None: the file does not exist
    line: int | None
    column: int | None
    key: str | None
    message: str

    def expected(self, path: Path) -> str:
        where = str(path)
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: " + (f"{self.key}: " if self.key else "") + self.message


CASES = [
    # -- unknown keys -----------------------------------------------------------------------------
    Bad("unknown-top-key", "name: x\nconections:\n  - id: a\n",
        2, 1, "conections", "unknown key 'conections' (did you mean 'connections'?)"),
    Bad("unknown-connection-key", "connections:\n  - id: a\n    profle: putty-0.80\n",
        3, 5, "connections[0].profle", "unknown key 'profle' (did you mean 'profile'?)"),
    Bad("unknown-session-key", "connections:\n  - id: a\n    actions:\n      - session: {shell: true, x12: true}\n",
        4, 32, "connections[0].actions[0].session.x12", "unknown key 'x12' (did you mean 'x11'?)"),
    Bad("misspelt-auth-step", "connections:\n  - id: a\n    auth: [publickey, {pasword: x}]\n",
        3, 24, "connections[0].auth[1].pasword", "unknown key 'pasword' (did you mean 'password'?)"),
    Bad("unknown-sftp-op-key",
        "connections:\n  - id: a\n    actions:\n      - session:\n          sftp: [{put: {path: x, sise: 3}}]\n",
        5, 34, "connections[0].actions[0].session.sftp[0].put.sise", "unknown key 'sise' (did you mean 'size'?)"),
    Bad("unknown-expectation-key", "connections:\n  - id: a\nexpect:\n  a:\n    event: [auth.accepted]\n",
        5, 5, "expect.a.event", "unknown key 'event' (did you mean 'events'?)"),
    # -- wrong types and values ---------------------------------------------------------------------
    Bad("wrong-type-start", "connections:\n  - id: a\n    start: soon\n",
        3, 12, "connections[0].start", 'expected number, got "soon"'),
    Bad("wrong-type-pty", "connections:\n  - id: a\n    actions:\n      - session:\n          pty: yes please\n",
        5, 16, "connections[0].actions[0].session.pty", 'expected boolean or a mapping, got "yes please"'),
    Bad("wrong-type-connections", "connections: {id: a}\n",
        1, 14, "connections", "expected array, got mapping"),
    Bad("bad-log-level", "server:\n  log_level: DEBUG4\nconnections:\n  - id: a\n",
        2, 14, "server.log_level",
        '"DEBUG4" is not one of QUIET, FATAL, ERROR, INFO, VERBOSE, DEBUG, DEBUG1, DEBUG2, DEBUG3'),
    Bad("bad-outcome", "connections:\n  - id: a\nexpect:\n  a:\n    outcome: {auth: maybe}\n",
        5, 21, "expect.a.outcome.auth", '"maybe" is not one of accepted, failed, none'),
    Bad("port-out-of-range", "connections:\n  - id: a\n    actions:\n      - forward: {port: 70000}\n",
        4, 25, "connections[0].actions[0].forward.port", "70000 is greater than the maximum, 65535"),
    Bad("bad-end", "connections:\n  - id: a\n    end: dropp\n",
        3, 10, "connections[0].end",
        "expected disconnect or drop or profile or reset or a mapping with 'disconnect', got \"dropp\""),
    Bad("two-kinds-in-one-action", "connections:\n  - id: a\n    actions: [{session: {}, forward: {port: 1}}]\n",
        3, 29, "connections[0].actions[0].forward",
        "one of session, forward, wait, wait_for per item, not both 'session' and 'forward'"),
    Bad("missing-connections", "name: x\nserver: {log_level: DEBUG1}\n",
        1, 1, "(top)", "'connections' is required"),
    Bad("no-connections", "connections: []\n",
        1, 14, "connections", "needs at least 1 item, got 0"),
    Bad("missing-id", "connections:\n  - user: bob\n",
        2, 5, "connections[0]", "'id' is required"),
    Bad("bad-connection-id", 'connections:\n  - id: "a b"\n',
        2, 9, "connections[0].id", "\"a b\" is not a valid connection id (letters, digits, '_', '.', '-')"),
    # -- loopback only ---------------------------------------------------------------------------
    Bad("source-outside-loopback", "connections:\n  - id: a\n    source: 192.168.1.10\n",
        3, 13, "connections[0].source",
        '"192.168.1.10" is not a loopback address in 127.0.0.0/8 (clients connect from loopback only)'),
    Bad("forward-to-remote-host",
        "connections:\n  - id: a\n    actions:\n      - forward: {host: example.com, port: 80}\n",
        4, 25, "connections[0].actions[0].forward.host",
        '"example.com" is not a loopback address (127.x.x.x, localhost or ::1): '
        "forwarding targets stay on this machine"),
    # -- names the product must know ------------------------------------------------------------
    Bad("unknown-profile", "connections:\n  - id: a\n    profile: putty-0.81\n",
        3, 14, "connections[0].profile", "unknown client profile 'putty-0.81' (did you mean 'putty-0.80'?)"),
    Bad("unknown-base-profile",
        "connections:\n  - id: a\n    profile: {base: openssh-9.3-debian, kex: [curve25519-sha256]}\n",
        3, 21, "connections[0].profile.base",
        "unknown client profile 'openssh-9.3-debian' (did you mean 'openssh-9.2-debian'?)"),
    Bad("unknown-event", "connections:\n  - id: a\nexpect:\n  a:\n    events:\n      - auth.accepted\n"
                         "      - auth.acepted\n",
        7, 9, "expect.a.events[1]", "unknown event 'auth.acepted' (did you mean 'auth.accepted'?)"),
    Bad("unknown-absent-event", "connections:\n  - id: a\nexpect:\n  a:\n    absent: [{event: kex.unable_to_negociate}]\n",
        5, 14, "expect.a.absent[0]",
        "unknown event 'kex.unable_to_negociate' (did you mean 'kex.unable_to_negotiate'?)"),
    Bad("unknown-after-event",
        "connections:\n  - id: a\n  - id: b\n    after: {connection: a, event: auth.postponned}\n",
        4, 35, "connections[1].after.event", "unknown event 'auth.postponned' (did you mean 'auth.postponed'?)"),
    # -- references between connections -------------------------------------------------------------
    Bad("duplicate-connection-id", "connections:\n  - id: a\n  - id: b\n  - id: a\n",
        4, 9, "connections[2].id", "duplicate connection id 'a'"),
    Bad("after-unknown-connection",
        "connections:\n  - id: a\n  - id: b\n    after: {connection: c, event: auth.accepted}\n",
        4, 25, "connections[1].after.connection", "'after' names unknown connection 'c'"),
    Bad("after-itself", "connections:\n  - id: a\n    after: {connection: a, event: auth.accepted}\n",
        3, 25, "connections[0].after.connection", "a connection cannot wait for itself to start"),
    Bad("wait-for-unknown-connection",
        "connections:\n  - id: a\n    actions:\n      - wait_for: {connection: z, event: auth.accepted}\n",
        4, 32, "connections[0].actions[0].wait_for.connection", "'wait_for' names unknown connection 'z'"),
    Bad("expect-unknown-connection", "connections:\n  - id: a\nexpect:\n  b:\n    events: [auth.accepted]\n",
        4, 3, "expect.b", "expectations for unknown connection 'b'"),
    Bad("shell-and-exec", 'connections:\n  - id: a\n    actions:\n      - session: {shell: true, exec: "ls"}\n',
        4, 18, "connections[0].actions[0].session",
        "a session does one of shell, exec, subsystem (got shell, exec)"),
    # -- jinja2 -----------------------------------------------------------------------------------
    Bad("jinja-syntax-error", "name: x\nconnections:\n  - id: a\n    user: {{ user }\n",
        4, None, "connections[0].user", "template error: unexpected '}'"),
    Bad("jinja-undefined-variable", 'name: x\nconnections:\n  - id: a\n    user: "{{ username }}"\n',
        4, 15, "connections[0].user", "template error: 'username' is undefined"),
    Bad("jinja-error-in-expression", "connections:\n  - id: a\n    start: {{ 1 / 0 }}\n",
        3, None, "connections[0].start", "template error: ZeroDivisionError: division by zero"),
    Bad("jinja-include-missing", '{% include "common.yaml" %}\nconnections:\n  - id: a\n',
        1, None, None, "template include not found: common.yaml"),
    Bad("matrix-value-wrong", 'matrix:\n  client: [putty-0.80, putty-0.70]\nconnections:\n  - id: a\n'
                              '    profile: "{{ client }}"\n',
        5, 14, "connections[0].profile",
        "unknown client profile 'putty-0.70' (did you mean 'putty-0.80'?) (matrix: client=putty-0.70)"),
    # -- publickey keys and host keys (issue 16) -----------------------------------------------------
    Bad("key-cannot-sign-with",
        "connections:\n  - id: a\n    auth: [{publickey: {key: ed25519, algorithm: rsa-sha2-512}}]\n",
        3, 50, "connections[0].auth[0].publickey.algorithm",
        "an ed25519 key cannot sign with rsa-sha2-512 (it signs with ssh-ed25519)"),
    Bad("unknown-user-key-type", "connections:\n  - id: a\n    auth: [{publickey: {key: dsa}}]\n",
        3, 30, "connections[0].auth[0].publickey.key", '"dsa" is not one of ed25519, ecdsa, rsa'),
    Bad("misspelt-authorized", "connections:\n  - id: a\n    auth: [{publickey: {authorised: false}}]\n",
        3, 25, "connections[0].auth[0].publickey.authorised",
        "unknown key 'authorised' (did you mean 'authorized'?)"),
    Bad("unknown-host-key-type", "server:\n  host_keys: [rsa, dsa]\nconnections:\n  - id: a\n",
        2, 20, "server.host_keys[1]", '"dsa" is not one of ed25519, ecdsa, rsa'),
    Bad("no-host-keys", "server:\n  host_keys: []\nconnections:\n  - id: a\n",
        2, 14, "server.host_keys", "needs at least 1 item, got 0"),
    # -- YAML -------------------------------------------------------------------------------------
    Bad("yaml-unclosed-bracket", "name: x\nconnections:\n  - id: a\n    user: [unclosed\n  - id: b\n",
        5, 7, "connections[0].user",
        "YAML syntax error: expected ',' or ']', but got ':' (while parsing a flow sequence at line 4, column 11)"),
    Bad("yaml-tab-indent", "name: x\nconnections:\n\t- id: a\n",
        3, 1, None, "YAML syntax error: found character '\\t' that cannot start any token"),
    Bad("yaml-duplicate-key", "name: x\nconnections:\n  - id: a\n    user: one\n    user: two\n",
        5, 5, "connections[0].user", "duplicate key 'user' (first at line 4)"),
    Bad("yaml-non-plain-key", "connections:\n  - id: a\n    ? [x, y]\n    : 1\n",
        3, 7, "connections[0]", "mapping keys must be plain values, not a list"),
    Bad("yaml-bad-merge", "connections:\n  - <<: 5\n    id: a\n",
        2, 9, "connections[0]", "bad merge key: expected a mapping or list of mappings for merging, but found scalar"),
    # -- the file itself --------------------------------------------------------------------------
    Bad("missing-file", None, None, None, None, "scenario file not found"),
    Bad("empty-file", "", 1, None, None, "empty scenario file"),
    Bad("only-comments", "# a scenario, one day\n\n", 1, None, None, "empty scenario file"),
    Bad("list-at-top", "- id: a\n- id: b\n", 1, 1, None,
        "a scenario is a mapping of keys (name, server, connections, expect), not a list"),
    Bad("not-utf8", b'name: "caf\xe9"\nconnections:\n  - id: a\n', 1, 11, None,
        "not UTF-8 text (byte 0xe9 at offset 10)"),
]


def write_case(case: Bad, folder: Path) -> Path:
    path = folder / f"{case.id}.yaml"
    if isinstance(case.text, bytes):
        path.write_bytes(case.text)
    elif case.text is not None:
        path.write_text(case.text)
    return path


def sshsim_command() -> list[str]:
    """The installed console script, else the module (same entry point)."""
    found = shutil.which("sshsim")
    return [found] if found else [sys.executable, "-m", "simulator"]


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 20
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_loader_names_file_line_column_and_key(case: Bad, tmp_path: Path) -> None:
    """The error carries the position and key path, and reads as one line."""
    path = write_case(case, tmp_path)
    with pytest.raises(BadInputError) as raised:
        load_scenarios(str(path))
    error = raised.value
    assert str(error) == case.expected(path)
    assert (error.file, error.line, error.column, error.key) == (str(path), case.line, case.column, case.key)
    assert "\n" not in str(error)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_exits_2_with_that_one_line(case: Bad, tmp_path: Path) -> None:
    """`sshsim run BAD.yaml`: exit 2, the error line alone on stderr, no traceback, nothing on stdout."""
    path = write_case(case, tmp_path)
    done = subprocess.run([*sshsim_command(), "run", str(path)], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr == f"sshsim: error: {case.expected(path)}\n"


def test_include_error_names_the_included_file(tmp_path: Path) -> None:
    """An undefined variable inside an included file is reported at that file's line."""
    (tmp_path / "users.yaml").write_text("server:\n  users:\n    - {name: {{ login }}}\n")
    main = tmp_path / "main.yaml"
    main.write_text('{% include "users.yaml" %}\nconnections:\n  - id: a\n')
    with pytest.raises(BadInputError) as raised:
        load_scenarios(str(main))
    assert str(raised.value) == f"{tmp_path / 'users.yaml'}:3: template error: 'login' is undefined"


def test_merge_keys_keep_positions(tmp_path: Path) -> None:
    """Keys merged in with <<: *anchor are allowed, overridable, and errors point at their own line."""
    path = tmp_path / "merge.yaml"
    path.write_text("vars:\n  client: &client {profile: putty-0.80, user: user}\n"
                    "connections:\n  - <<: *client\n    id: a\n  - <<: *client\n    id: b\n    user: 5\n")
    with pytest.raises(BadInputError) as raised:
        load_scenarios(str(path))
    assert str(raised.value) == f"{path}:8:11: connections[1].user: expected string, got 5"
    path.write_text(path.read_text().replace("user: 5", "user: other"))
    scenario = load_scenarios(str(path))[0]
    assert [(c.id, c.profile, c.user) for c in scenario.connections] == [
        ("a", "putty-0.80", "user"), ("b", "putty-0.80", "other")]
