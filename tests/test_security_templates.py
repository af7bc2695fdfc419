"""Scenario files, specs and logs are other people's text: templates must never run code, read
files outside their folder or use unbounded time and memory, and bad shapes are refused at load.

Each payload is refused with one line naming the file (and line, where there is one) and exit 2,
and leaves nothing behind: the payloads that would write a file name a marker under tmp_path,
checked afterwards. The end-to-end case connects a client whose banner is template code to a
real sshd, and feeds its log to `infer`, `verify`, `run` and `replay`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, client_connect_args, needs_local_sshd
from simulator import limits
from simulator.errors import BadInputError
from simulator.scenario import load_scenarios, scenario_schema
from simulator.scenario.infer import literal_field, template_escape
from simulator.scenario.loader import render
from simulator.verify.verifier import value_matches

CONN = "connections:\n  - id: a\n"


def marker_payloads(marker: Path) -> dict[str, str]:
    """jinja2's known ways out of a template, each aimed at creating `marker`."""
    run = f'os.system("touch {marker}")'
    return {
        "cycler-globals": f"{{{{ cycler.__init__.__globals__.{run} }}}}",
        "joiner-globals": f"{{{{ joiner.__init__.__globals__.{run} }}}}",
        "namespace-globals": f"{{{{ namespace.__init__.__globals__.{run} }}}}",
        "lipsum-builtins": f"{{{{ lipsum.__globals__.__builtins__.open('{marker}', 'w') }}}}",
        "self-init": f"{{{{ self.__init__.__globals__.__builtins__.open('{marker}', 'w') }}}}",
        "mro-subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "getitem-class": "{{ ''['__class__']['__mro__'] }}",
        "attr-filter": "{{ ''|attr('__class__') }}",
        "format-escape": "{{ '{0.__class__.__mro__}'.format('') }}",
        "format-map-escape": "{{ '{a.__class__}'.format_map(dict(a='')) }}",
        "flask-config": "{{ config.__class__.__init__.__globals__ }}",
        "flask-request": "{{ request.application.__globals__ }}",
        "range-globals": "{{ range.__init__.__globals__ }}",
        "dict-mutation": "{% set d = dict() %}{{ d.update(a=1) }}",
        "type-base": "{{ dict.__base__.__subclasses__() }}",
        "loop-internals": "{% for x in [1] %}{{ loop.__init__.__globals__ }}{% endfor %}",
        "macro-globals": "{% macro m() %}{% endmacro %}{{ m.__init__.__globals__ }}",
    }


@pytest.mark.parametrize("name", sorted(marker_payloads(Path("/x"))))
def test_escape_is_refused(name: str, tmp_path: Path) -> None:
    marker = tmp_path / "created"
    payload = marker_payloads(marker)[name]
    path = tmp_path / "s.yaml"
    path.write_text(CONN + f"# {payload}\n")
    with pytest.raises(BadInputError) as raised:
        load_scenarios(str(path))
    text = str(raised.value)
    assert text.startswith(f"{path}:3"), text
    assert "\n" not in text and ("refused" in text or "is undefined" in text), text
    assert not marker.exists()


def test_unsafe_attribute_is_refused_even_in_the_lenient_first_reading(tmp_path: Path) -> None:
    """The stock sandbox returns an undefined value for `x.__class__`, which a lenient rendering
    prints as nothing: here it is refused at once, naming the attribute."""
    path = tmp_path / "s.yaml"
    path.write_text(CONN + "    user: \"{{ ''.__class__ }}\"\n")
    with pytest.raises(BadInputError) as raised:
        load_scenarios(str(path))
    assert str(raised.value) == (f"{path}:3: connections[0].user: template refused: access to attribute "
                                 "'__class__' of a 'str' object is not allowed")


# -- includes ------------------------------------------------------------------------------------
@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A scenario folder, beside a secret file outside it."""
    (tmp_path / "outside.yaml").write_text("name: OUTSIDE-SECRET\n")
    inner = tmp_path / "scenarios"
    (inner / "sub").mkdir(parents=True)
    (inner / "common.yaml").write_text("name: included\n")
    (inner / "sub" / "users.yaml").write_text("server: {users: [{name: bob}]}\n")
    return inner


def load_including(folder: Path, name: str) -> str:
    path = folder / "main.yaml"
    path.write_text(f'{{% include "{name}" %}}\n' + CONN)
    with pytest.raises(BadInputError) as raised:
        load_scenarios(str(path))
    text = str(raised.value)
    assert "OUTSIDE-SECRET" not in text and "root:" not in text
    assert "\n" not in text
    return text


def test_includes_inside_the_folder_work(folder: Path) -> None:
    path = folder / "main.yaml"
    path.write_text('{% include "common.yaml" %}\n{% include "./sub/users.yaml" %}\n' + CONN)
    scenario = load_scenarios(str(path))[0]
    assert scenario.name == "included" and [u.name for u in scenario.server.users] == ["bob"]


@pytest.mark.parametrize("name, why", [
    ("/etc/passwd", "only a relative path inside the scenario's folder"),
    ("../outside.yaml", "'..' is not allowed"),
    ("sub/../../outside.yaml", "'..' is not allowed"),
])
def test_include_paths_leaving_the_folder_are_refused(folder: Path, name: str, why: str) -> None:
    text = load_including(folder, name)
    assert text.startswith(f"{folder / 'main.yaml'}:1: template refused: include {name!r}: ") and why in text


@pytest.mark.parametrize("kind", ["import", "from", "extends"])
def test_imports_and_extends_are_confined_too(folder: Path, kind: str) -> None:
    statement = {"import": '{% import "../outside.yaml" as x %}',
                 "from": '{% from "/etc/passwd" import x %}',
                 "extends": '{% extends "../outside.yaml" %}'}[kind]
    path = folder / "main.yaml"
    path.write_text(statement + "\n" + CONN)
    with pytest.raises(BadInputError) as raised:
        load_scenarios(str(path))
    assert "template refused: include" in str(raised.value)


@pytest.mark.parametrize("target", ["outside", "inside", "shadow", "folder"])
def test_every_symlink_is_refused(folder: Path, target: str) -> None:
    """Symlinks are never followed, whether they lead out of the folder or stay inside."""
    link = folder / "link"
    dest = {"outside": folder.parent / "outside.yaml", "inside": folder / "common.yaml",
            "shadow": Path("/etc/shadow"), "folder": folder.parent}[target]
    link.symlink_to(dest)
    name = "link/outside.yaml" if target == "folder" else "link"
    text = load_including(folder, name)
    assert text.endswith(f"include {name!r}: symlinks are not followed"), text


def test_special_files_and_oversized_includes_are_refused(folder: Path) -> None:
    os.mkfifo(folder / "fifo")
    assert load_including(folder, "fifo").endswith("include 'fifo': not a regular file")
    (folder / "big.yaml").write_text("#" * (limits.MAX_SOURCE_BYTES + 1))
    assert "larger than" in load_including(folder, "big.yaml")
    assert load_including(folder, "sub").endswith("include 'sub': not a regular file")


def test_scenario_file_size_is_bounded_before_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(CONN + "#" * (limits.MAX_SOURCE_BYTES + 1))
    with pytest.raises(BadInputError, match=r"larger than \d+ bytes"):
        load_scenarios(str(path))
    # Not a regular file: /dev/zero is read no further than the limit either.
    with pytest.raises(BadInputError, match=r"larger than \d+ bytes"):
        load_scenarios("/dev/zero")


# -- bounded work --------------------------------------------------------------------------------
AMPLIFIERS = {
    "range-huge": ("{% for i in range(10**10) %}{% endfor %}", "Range too big"),
    "pow": ("{{ 10 ** 100000 }}", "has more than"),
    "int-product": ("{% set a = 10 ** 1000 %}{{ a * a * a * a * a }}", "a product of more than"),
    "str-repeat": ("{{ 'x' * 10**9 }}", "'*' would make 1000000000 characters"),
    "list-repeat": ("{{ [1, 2] * 10**9 }}", "'*' would make"),
    "concat-doubling": ("{% macro f(s, n) %}{{ f(s ~ s, n - 1) if n else s|length }}{% endmacro %}{{ f('x', 40) }}",
                        "'~' would make"),
    "plus-doubling": ("{% macro f(s, n) %}{{ f(s + s, n - 1) if n else s|length }}{% endmacro %}{{ f('x', 40) }}",
                      "'+' would make"),
    "join-doubling": ("{% macro f(s, n) %}{{ f([s, s]|join, n - 1) if n else s|length }}{% endmacro %}{{ f('x', 40) }}",
                      "'join' would make"),
    "center": ("{{ 'x'|center(10**9) }}", "'center' would make"),
    "method-ljust": ("{{ 'x'.ljust(999999999) }}", "ljust() would make"),
    "percent-width": ("{{ '%999999999s' % 1 }}", "a format width over"),
    "format-width": ("{{ '{:>999999999}'.format(1) }}", "a format width over"),
    "format-star": ("{{ '%*d'|format(999999999, 1) }}", "a format width over"),
    "replace": ("{% set a = 'a' * 4000 %}{{ a|replace('a', a) }}", "replace would make"),
    "indent": ("{{ ('x\n' * 100000)|indent(1000) }}", "'indent' would make"),
    "sum-lists": ("{{ ([[1]] * 100000)|sum(start=[]) }}", "'sum' adds numbers only"),
    "batch": ("{{ [1]|batch(10**9, 'x')|list }}", "into more than"),
    "output": ("{% for a in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "the rendered file is longer than"),
    "values-made": ("{% set s = 'x' * 4000000 %}{% for i in range(100) %}{{ (s|upper)|length }}{% endfor %}",
                    "characters of values"),
    "set-block": ("{% set x %}{% for i in range(100000) %}" + "y" * 1000 + "{% endfor %}{% endset %}{{ x|length }}",
                  "a captured block would make"),
    "macro-capture": ("{% macro m() %}{% for i in range(100000) %}" + "y" * 1000 + "{% endfor %}{% endmacro %}"
                      "{{ m()|length }}", "a captured block would make"),
    "recursion": ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "nest too deeply"),
    "deep-expression": ("{{ " + "(" * 20000 + "1" + ")" * 20000 + " }}", "nest too deeply"),
}


@pytest.mark.parametrize("name", sorted(AMPLIFIERS))
def test_work_is_bounded(name: str, tmp_path: Path) -> None:
    payload, expected = AMPLIFIERS[name]
    path = tmp_path / "s.yaml"
    path.write_text(CONN + f"# {payload}\n")
    started = time.monotonic()
    with pytest.raises(BadInputError) as raised:
        load_scenarios(str(path))
    assert expected in str(raised.value) and "\n" not in str(raised.value)
    assert time.monotonic() - started < 5


def test_nested_loops_stop_at_the_time_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """10^10 iterations that output nothing: stopped at the limit (1 s here, to keep the test short)."""
    monkeypatch.setattr("simulator.scenario.template.MAX_RENDER_SECONDS", 1.0)
    path = tmp_path / "s.yaml"
    path.write_text(CONN + "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}\n")
    started = time.monotonic()
    with pytest.raises(BadInputError) as raised:
        load_scenarios(str(path))
    took = time.monotonic() - started
    assert str(raised.value) == (f"{path}:3: template refused: rendering took longer than 1 s "
                                 "(the limit for reading one scenario or spec)")
    assert 1.0 <= took < 2.5, took


def test_ordinary_templates_still_work(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("vars: {n: 3, who: [ann, bob]}\n"
                    "name: {{ 'x' * 2 ~ (10 ** 3)|string }}-{{ '%s'|format('y') }}-"
                    "{{ '{}'.format('z') }}\n"
                    "connections:\n{% for i in range(n) %}  - id: c{{ i }}\n"
                    "    user: {{ who|join('-')|upper }}\n{% endfor %}")
    scenario = load_scenarios(str(path))[0]
    assert scenario.name == "xx1000-y-z"
    assert [(c.id, c.user) for c in scenario.connections] == [("c0", "ANN-BOB"), ("c1", "ANN-BOB"), ("c2", "ANN-BOB")]


# -- YAML, numbers and matrix ---------------------------------------------------------------------
LAUGHS = "".join(f"{k}: &{k} [{', '.join([f'*{p}' if p else 'x'] * 10)}]\n"
                 for k, p in zip("abcdefg", ["", "a", "b", "c", "d", "e", "f"]))

SHAPES = {
    "billion-laughs": (LAUGHS + CONN, "YAML with more than 200000 nodes once aliases are expanded"),
    "nested-brackets": ("x: " + "[" * 20000 + "]" * 20000 + "\n" + CONN, "YAML nested deeper than 64 levels"),
    "nested-mappings": ("x: " + "{a: " * 20000 + "1" + "}" * 20000 + "\n" + CONN,
                        "YAML nested deeper than 64 levels"),
    "matrix": ("matrix:\n" + "".join(f"  v{i}: [1,2,3,4,5,6,7,8,9,10]\n" for i in range(9)) + CONN,
               "matrix: the matrix expands to 1000000000 scenarios (the limit is 1000)"),
    "start-inf": (CONN + "    start: .inf\n", "connections[0].start: .inf is not a finite number"),
    "start-nan": (CONN + "    start: .nan\n", "connections[0].start: .nan is not a finite number"),
    "start-huge": (CONN + "    start: 1.0e+300\n", "connections[0].start: 1e+300 is greater than the maximum, 3600.0"),
    "wait-huge": (CONN + "    actions: [{wait: 99999999}]\n", "is greater than the maximum, 3600.0"),
    "sync-timeout": (CONN + "    actions: [{wait_for: {event: auth.accepted, timeout: 1.0e+400}}]\n",
                     "is not a finite number"),
    "code-23-digits": (CONN + "    end: {disconnect: {code: 12345678901234567890123}}\n",
                       "connections[0].end.disconnect.code: 12345678901234567890123 is greater than the maximum, "
                       "4294967295"),
    "exit-status": (CONN + "    actions: [{session: {exec: x, exit_status: 99999999999}}]\n",
                    "greater than the maximum"),
    "sftp-size": (CONN + "    actions: [{session: {sftp: [{put: {path: x, size: 100000000000}}]}}]\n",
                  f"is greater than the maximum, {limits.MAX_SFTP_PUT_BYTES}"),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_shapes_and_numbers_are_bounded_at_load(name: str, tmp_path: Path) -> None:
    text, expected = SHAPES[name]
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(BadInputError) as raised:
        load_scenarios(str(path))
    assert expected in str(raised.value) and re.match(rf"{re.escape(str(path))}:\d+:\d+: ", str(raised.value))


def test_schema_maxima_come_from_limits() -> None:
    """Each bound is stated once (simulator/limits.py): the published schema carries it."""
    defs = scenario_schema()["$defs"]
    assert defs["connection"]["properties"]["start"]["maximum"] == limits.MAX_WAIT_SECONDS
    assert defs["sync"]["properties"]["timeout"]["maximum"] == limits.MAX_WAIT_SECONDS
    assert defs["sync_here"]["properties"]["timeout"]["maximum"] == limits.MAX_WAIT_SECONDS


# -- problems found at load rather than at run ------------------------------------------------------
AT_LOAD = {
    "bad-regex": (CONN + "expect:\n  a:\n    events: [{event: auth.accepted, fields: {user: '~('}}]\n",
                  "5:52: expect.a.events[0].fields.user: invalid regular expression '~(': "
                  "missing ), unterminated subpattern at position 0"),
    "duplicate-user": ("server:\n  users: [{name: bob}, {name: bob}]\n" + CONN,
                       "2:31: server.users[1].name: duplicate user name 'bob' (first at server.users[0])"),
    "user-root": ("server:\n  users: [{name: root, uid: 1000}]\n" + CONN,
                  "2:18: server.users[0].name: user name 'root' is taken by a system account or group"),
    "user-tty": ("server:\n  users: [{name: bob}, {name: tty}]\n" + CONN,
                 "2:31: server.users[1].name: user name 'tty' is taken by a system account or group"),
    "cycle-after": ("connections:\n  - id: a\n    after: {connection: b, event: auth.accepted}\n"
                    "  - id: b\n    after: {connection: a, event: auth.accepted}\n",
                    "3:12: connections[0].after: connections wait for each other: a waits (after) for b's "
                    "auth.accepted; b waits (after) for a's auth.accepted (a deadlock)"),
    "cycle-pause": ("connections:\n  - id: a\n    pause: [{before: signed-publickey, until: {connection: b, "
                    "event: auth.accepted}}]\n  - id: b\n    after: {connection: a, event: auth.accepted}\n",
                    "3:13: connections[0].pause[0]: connections wait for each other: a waits (pause) for b's "
                    "auth.accepted; b waits (after) for a's auth.accepted (a deadlock)"),
    "cycle-wait-for": ("connections:\n  - id: a\n    actions: [{wait_for: {connection: b, event: channel.open}}, "
                       "{session: {shell: true}}]\n  - id: b\n    actions: [{wait_for: {connection: a, "
                       "event: channel.open}}, {session: {shell: true}}]\n",
                       "3:26: connections[0].actions[0].wait_for: connections wait for each other: a waits "
                       "(wait_for) for b's channel.open; b waits (wait_for) for a's channel.open (a deadlock)"),
    "cycle-three": ("connections:\n  - id: a\n    after: {connection: c, event: auth.accepted}\n"
                    "  - id: b\n    after: {connection: a, event: kex.algorithm}\n"
                    "  - id: c\n    pause: [{before: signed-publickey, until: {connection: b, "
                    "event: auth.accepted}}]\n",
                    "connections wait for each other: a waits (after) for c's auth.accepted; c waits (pause) "
                    "for b's auth.accepted; b waits (after) for a's kex.algorithm (a deadlock)"),
    "own-channel": (CONN + "    actions: [{wait_for: {event: channel.open}}, {session: {shell: true}}]\n",
                    "a waits (wait_for) for a's channel.open (a deadlock)"),
    "chroot-dotdot": ("server:\n  chroot_dirs: [../../etc]\n" + CONN,
                      "2:17: server.chroot_dirs[0]: \"../../etc\" is not a folder inside the run's /srv"),
    "chroot-inner-dotdot": ("server:\n  chroot_dirs: [sftp/../../etc]\n" + CONN,
                            "is not a folder inside the run's /srv"),
    "chroot-absolute": ("server:\n  chroot_dirs: [{path: /etc, owner: bob}]\n" + CONN,
                        "2:24: server.chroot_dirs[0].path: \"/etc\" is not a folder inside the run's /srv"),
    "chroot-empty-part": ("server:\n  chroot_dirs: [sftp//x]\n" + CONN, "is not a folder inside the run's /srv"),
}


@pytest.mark.parametrize("name", sorted(AT_LOAD))
def test_found_at_load(name: str, tmp_path: Path) -> None:
    text, expected = AT_LOAD[name]
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(BadInputError) as raised:
        load_scenarios(str(path))
    assert expected in str(raised.value) and str(raised.value).startswith(f"{path}:"), str(raised.value)


def test_waits_that_do_not_deadlock_are_accepted(tmp_path: Path) -> None:
    """The reference scenario's shape: B starts once A is postponed, A holds its signed request
    until B has connected. A cycle between connections, but not between their gates."""
    path = tmp_path / "s.yaml"
    path.write_text("connections:\n  - id: a\n    pause: [{before: signed-publickey, until: {connection: b, "
                    "event: connection.from}}]\n  - id: b\n    after: {connection: a, event: auth.postponed}\n"
                    "    actions: [{wait_for: {connection: a, event: channel.open}}, {session: {shell: true}}]\n"
                    "  - id: c\n    actions: [{session: {shell: true}}, {wait_for: {event: channel.open}}]\n")
    assert [c.id for c in load_scenarios(str(path))[0].connections] == ["a", "b", "c"]
    library = sorted((ROOT / "scenarios").rglob("*.yaml"))
    seed = [p for p in library if p.parent.name == "seed"]
    assert seed and load_scenarios(str(seed[0]))


def test_vars_defaults_survive_a_failing_first_reading(tmp_path: Path) -> None:
    """`10 / count` cannot be computed without `count`; the default must still reach it."""
    path = tmp_path / "s.yaml"
    path.write_text("vars: {count: 4}\nmatrix: {n: [1, 2]}\nconnections:\n  - id: a\n"
                    "    start: {{ 10 / count / n }}\n")
    assert [c.connections[0].start for c in load_scenarios(str(path))] == [2.5, 1.25]


def test_refusals_in_the_first_reading_are_reported_not_swallowed(tmp_path: Path) -> None:
    """A strict reading would stop first at the undefined `y` of line 1; the lenient one reaches the
    refusal of line 4, which is the error reported (the old reading swallowed it)."""
    path = tmp_path / "s.yaml"
    path.write_text("name: \"{{ y }}\"\n" + CONN + "    user: \"{{ ''.__class__ }}\"\n")
    with pytest.raises(BadInputError) as raised:
        load_scenarios(str(path))
    assert str(raised.value) == (f"{path}:4: connections[0].user: template refused: access to attribute "
                                 "'__class__' of a 'str' object is not allowed")


# -- infer's output is never template code -------------------------------------------------------
NASTY = ['SSH-2.0-{{cycler.__init__.__globals__.os.system("id>/tmp/x")}}', "{% raw %}{{x}}{% endraw %}",
         "{#", "{{{{", "{%- endraw -%}", "a{{ '{' }}b", "{", "}}", "{{ '{{' }}", "{%}", "'\"{#}\n{{"]


@pytest.mark.parametrize("text", NASTY)
def test_template_escape_renders_back_to_itself(text: str, tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    assert render(template_escape(text), str(path), {}) == text


def test_inferred_scenario_text_reads_back_as_the_same_data(tmp_path: Path) -> None:
    """What `infer` writes, rendered as `run` renders it, is exactly the data it dumped, whatever
    the log's text was (every string of it here is template code or looks like it)."""
    import yaml

    from simulator.scenario.infer import to_yaml

    data = {"name": NASTY[0], "description": NASTY[2], "connections": [
        {"id": "c1", "user": text, "profile": {"base": "asyncssh-2.24.1", "banner": text}} for text in NASTY]}
    path = tmp_path / "inferred.yaml"
    path.write_text(to_yaml(data, "/logs/{{ evil }}.log"))
    assert yaml.safe_load(render(path.read_text(), str(path), {})) == data


@pytest.mark.parametrize("value", ["*", "~(a+)+$", "$user", "~", "plain", "a*b"])
def test_literal_field_matches_only_itself(value: str) -> None:
    expected = literal_field(value)
    assert value_matches(expected, value, {})
    assert not value_matches(expected, value + "x", {})
    assert not value_matches(expected, "other", {})


# -- the CLI: one line, exit 2, nothing created ----------------------------------------------------
def sshsim(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=env)


@pytest.mark.parametrize("command", ["verify", "run"])
@pytest.mark.parametrize("name", ["cycler-globals", "lipsum-builtins", "format-escape", "attr-filter"])
def test_cli_refuses_with_one_line(command: str, name: str, tmp_path: Path) -> None:
    marker = tmp_path / "created"
    path = tmp_path / "s.yaml"
    path.write_text(CONN + f"    user: x\n# {marker_payloads(marker)[name]}\n")
    log = tmp_path / "empty.log"
    log.write_text("")
    args = ["verify", str(log), str(path)] if command == "verify" else ["run", str(path)]
    done = sshsim(*args, cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == "" and "Traceback" not in done.stderr
    assert re.fullmatch(rf"sshsim: error: {re.escape(str(path))}:4(:\d+)?: template (refused|error): [^\n]*\n",
                        done.stderr)
    assert not marker.exists()


def test_cli_bounds_a_billion_laughs_and_deep_brackets(tmp_path: Path) -> None:
    for name, text in (("laughs", LAUGHS + CONN), ("brackets", "x: " + "[" * 20000 + "]" * 20000 + "\n" + CONN),
                       ("template-brackets", CONN + "# {{ " + "(" * 20000 + "1" + ")" * 20000 + " }}\n")):
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        done = sshsim("run", str(path), cwd=tmp_path)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr[-2000:]
        assert done.stderr.startswith(f"sshsim: error: {path}") and "Traceback" not in done.stderr


# -- end to end: a client's banner is template code ---------------------------------------------------
@needs_local_sshd
async def test_a_banner_of_template_code_round_trips_literally(sshd_server: object, tmp_path: Path) -> None:
    import asyncssh

    # sshd logs at most 100 characters of a banner: the marker path is short (and checked absent first).
    marker = Path(f"/tmp/sx{os.getpid()}")
    assert not marker.exists()
    banner = f'{{{{cycler.__init__.__globals__.os.system("id>{marker}")}}}}'
    async with asyncssh.connect(**client_connect_args(sshd_server), client_version=banner) as conn:
        await conn.run("true", check=True)
    sshd_server.wait_idle()  # type: ignore[attr-defined]
    log = tmp_path / "banner.log"
    log.write_text("".join(line + "\n" for line in sshd_server.log.lines()))  # type: ignore[attr-defined]
    assert f"remote software version {banner}" in log.read_text()

    scenario_file = tmp_path / "inferred.yaml"
    done = sshsim("infer", str(log), "-o", str(scenario_file), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    scenario = load_scenarios(str(scenario_file))[0]
    assert scenario.connections[0].profile["banner"] == banner  # type: ignore[index]
    assert scenario.expectations[scenario.connections[0].id].events[0].fields == {"software": banner}

    done = sshsim("verify", str(log), str(scenario_file), "--no-color", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    done = sshsim("run", str(scenario_file), "--no-color", cwd=tmp_path, timeout=300)
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout + done.stderr[-3000:]
    kept = tmp_path / "kept.yaml"
    done = sshsim("replay", str(log), "--no-color", "--scenario-out", str(kept), cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1].startswith("matched ") and banner in done.stdout
    assert kept.read_text().splitlines()[1:] == scenario_file.read_text().splitlines()[1:]
    assert not marker.exists()
