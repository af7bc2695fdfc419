"""Read scenario files: jinja2 first, then YAML with positions, then the JSON Schema, then meaning.

Every problem becomes a one-line `BadInputError` naming the file, line, column and key path, so
a user can go straight to it; nothing here ever shows a traceback for bad input.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import os
import re
import stat
from collections.abc import Iterator
from importlib import resources
from typing import Any

import jinja2
from jinja2.sandbox import SecurityError

from simulator import limits
from simulator.builds.features import features
from simulator.errors import BadInputError
from simulator.limits import MAX_MATRIX_CELLS, MAX_RENDERED_CHARS, QUOTE_CHARS
from simulator.profiles import check_override, known_profiles
from simulator.scenario.events import known_event_names
from simulator.scenario.model import Scenario, build_scenario
from simulator.scenario.template import Refusal, SandboxEnvironment, TemplateRefused, read_bounded, render_deadline
from simulator.target.accounts import RESERVED_NAMES
from simulator.target.base import KEY_SIG_ALGS
from simulator.yamlread import (
    Position,
    key_path,
    load_yaml_with_positions,
    nearest,
    schema_error,
    yaml_key_at,
    yaml_kind,
)

_SCHEMA: dict[str, Any] | None = None


def scenario_schema() -> dict[str, Any]:
    """The published JSON Schema of scenario files (simulator/schema/scenario.schema.json)."""
    global _SCHEMA
    if _SCHEMA is None:
        text = resources.files("simulator").joinpath("schema/scenario.schema.json").read_text()
        _SCHEMA = _with_limits(json.loads(text))
    return _SCHEMA


def _with_limits(schema: Any) -> Any:
    """The schema with each `"x-limit": NAME` given `"maximum"` from simulator/limits.py, so that
    every bound is stated once (there) and the published schema still carries it."""
    if isinstance(schema, dict):
        if "x-limit" in schema:
            schema["maximum"] = getattr(limits, schema["x-limit"])
        for value in schema.values():
            _with_limits(value)
    elif isinstance(schema, list):
        for value in schema:
            _with_limits(value)
    return schema


# -- jinja2 -------------------------------------------------------------------------------------
def render(text: str, path: str, variables: dict[str, Any], *, strict: bool = True, locate: bool = True,
           deadline: float | None = None) -> str:
    """Render the file as a sandboxed jinja2 template (simulator/scenario/template.py); includes
    resolve inside the file's folder. The output is made with `generate()` and counted, so it
    stops at MAX_RENDERED_CHARS.

    With `locate`, an error names the YAML key of its line too (which costs another reading, within
    the same deadline; none for a refusal, which must cost nothing more).
    """
    env = SandboxEnvironment(os.path.dirname(os.path.abspath(path)), strict=strict)
    if deadline is not None:
        env.deadline = deadline

    def key_of(where: str, line: int | None, rerender: bool = True) -> str | None:
        # A refusal is located without rendering (cheap, no recursion), so even in a first reading.
        if (locate or not rerender) and where == path:
            return _key_at_line(text, path, variables, line, env.deadline if rerender else None)
        return None

    try:
        template = env.from_string(text)
        template.filename = path
        out: list[str] = []
        size = 0
        for chunk in template.generate(**variables):
            size += len(chunk)
            if size > MAX_RENDERED_CHARS:
                raise Refusal(f"the rendered file is longer than {MAX_RENDERED_CHARS} characters")
            out.append(chunk)
        return "".join(out)
    except TemplateRefused:
        raise
    except (SecurityError, RecursionError, MemoryError) as exc:
        where, line = _template_position(exc, path)
        if isinstance(exc, RecursionError):
            problem = "templates, macros or includes nest too deeply"
        elif isinstance(exc, MemoryError):
            problem = "the template needs more memory than there is"
        else:
            problem = _one_line(exc.message or str(exc)) if isinstance(exc, jinja2.TemplateError) else str(exc)
        raise TemplateRefused(f"template refused: {problem}", file=where, line=line,
                              key=key_of(where, line, rerender=False)) from None
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename if exc.filename and exc.filename != "<template>" else path
        raise BadInputError(f"template error: {_one_line(exc.message or '')}", file=where, line=exc.lineno,
                            key=key_of(where, exc.lineno)) from None
    except jinja2.TemplateNotFound as exc:
        where, line = _template_position(exc, path)
        raise BadInputError(f"template include not found: {_one_line(str(exc.name))}", file=where, line=line,
                            key=key_of(where, line)) from None
    except jinja2.UndefinedError as exc:
        where, line = _template_position(exc, path)
        message = _one_line(exc.message or "undefined value")
        raise BadInputError(f"template error: {message}", file=where, line=line,
                            column=_name_column(text, line, message) if where == path else None,
                            key=key_of(where, line)) from None
    except Exception as exc:  # errors raised by template code (filters, arithmetic)
        where, line = _template_position(exc, path)
        raise BadInputError(f"template error: {type(exc).__name__}: {_one_line(str(exc))}", file=where,
                            line=line, key=key_of(where, line)) from None


def _one_line(text: str) -> str:
    """An exception's text as one line of at most QUOTE_CHARS characters (it may quote a value)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= QUOTE_CHARS else flat[: QUOTE_CHARS - 3] + "..."


def _template_position(exc: BaseException, path: str) -> tuple[str, int | None]:
    """(file, line) a rendering error was raised at, from jinja2's rewritten traceback.

    jinja2 replaces the frames of compiled template code by fake frames whose code carries the
    template's file name and line (their globals hold `__jinja_exception__`); the innermost one
    is where the error is, which may be an included file.
    """
    where, line = path, None
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if "__jinja_exception__" in frame.f_globals or frame.f_code.co_filename == path:
            name = frame.f_code.co_filename
            where = path if name in ("<template>", "") else name
            line = tb.tb_lineno
        tb = tb.tb_next
    return where, line


def _name_column(text: str, line: int | None, message: str) -> int | None:
    """Column of the name an undefined-variable message quotes ("'user' is undefined"), on its line."""
    names = re.findall(r"'([^']+)'", message)
    lines = text.splitlines()
    if not names or line is None or not 0 < line <= len(lines):
        return None
    found = re.search(r"(?<![\w.])" + re.escape(names[-1]) + r"(?!\w)", lines[line - 1])
    return found.start() + 1 if found else None


def _key_at_line(text: str, path: str, variables: dict[str, Any], line: int | None,
                 deadline: float | None) -> str | None:
    """The YAML key path a template line stands for, to name it in a template error.

    First the file rendered leniently (undefined values become empty; only when rendering kept
    every line where it was, and only with a `deadline`: never after a refusal), else the template
    text with its jinja2 tags blanked out (for syntax errors, which no rendering survives): see
    `yaml_key_at`.
    """
    if line is None:
        return None
    if deadline is not None:
        try:
            lenient = render(text, path, variables, strict=False, locate=False, deadline=deadline)
            if lenient.count("\n") == text.count("\n"):
                found = yaml_key_at(lenient, path, line)
                if found:
                    return found
        except BadInputError:
            pass
    rows = [re.sub(r"\{#.*?#\}|\{%.*?%\}", "", re.sub(r"\{\{.*?\}\}", "x", row)) for row in text.split("\n")]
    return yaml_key_at("\n".join(rows), path, line)


_CHROOT_HINT = ("is not a folder inside the run's /srv (a relative path of letters, digits, '.', '_', '-' "
                "and '/', without '..', '.' or empty parts)")
# What a `pattern` stands for, by the name of the key it checks (the schema's regexes are not
# for reading).
_PATTERN_HINTS = {
    "source": "is not a loopback address in 127.0.0.0/8 (clients connect from loopback only)",
    "host": "is not a loopback address (127.x.x.x, localhost or ::1): forwarding targets stay on this machine",
    "id": "is not a valid connection id (letters, digits, '_', '.', '-')",
    "name": ("is not a valid user name (a lower-case letter or '_', then up to 31 lower-case letters, "
             "digits, '_', '-')"),
    "host_name": "is not a valid host name (letters, digits, '.', '_', '-')",
    "target": "is not a target: local, docker or docker:IMAGE",
    "chroot_dirs": _CHROOT_HINT,
    "path": _CHROOT_HINT,
    "owner": "is not a valid user name",
}


def _check_meaning(data: dict[str, Any], positions: dict[tuple, Position], path: str) -> None:
    """What the schema cannot say: ids unique and referenced, profiles and events known."""
    def fail(message: str, at: tuple) -> None:
        pos = positions.get(at) or nearest(positions, at)
        raise BadInputError(message, file=path, line=pos[1] if pos else None,
                            column=pos[2] if pos else None, key=key_path(at))

    ids: list[str] = []
    for i, conn in enumerate(data["connections"]):
        if conn["id"] in ids:
            fail(f"duplicate connection id {conn['id']!r}", ("connections", i, "id"))
        ids.append(conn["id"])
    profiles = known_profiles()
    events = known_event_names()

    def check_event(name: str, at: tuple) -> None:
        if events and name not in events:
            close = difflib.get_close_matches(name, sorted(events), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            fail(f"unknown event {name!r}{hint}", at)

    for i, conn in enumerate(data["connections"]):
        profile = conn.get("profile")
        name = profile.get("base") if isinstance(profile, dict) else profile
        at = ("connections", i, "profile") + (("base",) if isinstance(profile, dict) else ())
        if name is not None and name not in profiles:
            close = difflib.get_close_matches(name, sorted(profiles), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(profiles))})"
            fail(f"unknown client profile {name!r}{hint}", at)
        if isinstance(profile, dict):
            check_override(profile, positions, path, ("connections", i, "profile"))
        after = conn.get("after")
        if after:
            if after["connection"] not in ids:
                fail(f"'after' names unknown connection {after['connection']!r}",
                     ("connections", i, "after", "connection"))
            if after["connection"] == conn["id"]:
                fail("a connection cannot wait for itself to start", ("connections", i, "after", "connection"))
            check_event(after["event"], ("connections", i, "after", "event"))
        for j, pause in enumerate(conn.get("pause", [])):
            target = pause["until"]["connection"]
            if target not in ids:
                fail(f"'pause' names unknown connection {target!r}",
                     ("connections", i, "pause", j, "until", "connection"))
            check_event(pause["until"]["event"], ("connections", i, "pause", j, "until", "event"))
        for j, action in enumerate(conn.get("actions", [])):
            if "wait_for" in action:
                target = action["wait_for"].get("connection")
                if target is not None and target not in ids:
                    fail(f"'wait_for' names unknown connection {target!r}",
                         ("connections", i, "actions", j, "wait_for", "connection"))
                check_event(action["wait_for"]["event"], ("connections", i, "actions", j, "wait_for", "event"))
            if "session" in action:
                kinds = [k for k in ("shell", "exec", "subsystem") if k in action["session"]]
                if len(kinds) > 1:
                    fail(f"a session does one of shell, exec, subsystem (got {', '.join(kinds)})",
                         ("connections", i, "actions", j, "session"))
    for conn_id, expectation in (data.get("expect") or {}).items():
        if conn_id not in ids:
            fail(f"expectations for unknown connection {conn_id!r}", ("expect", ("key", conn_id)))
        for group in ("events", "absent"):
            for k, item in enumerate(expectation.get(group, [])):
                name = item if isinstance(item, str) else item["event"]
                check_event(name, ("expect", conn_id, group, k))
                for field, value in ({} if isinstance(item, str) else item.get("fields", {})).items():
                    if isinstance(value, str) and value.startswith("~"):
                        try:
                            re.compile(value[1:])
                        except re.error as exc:
                            fail(f"invalid regular expression {value!r}: {exc}",
                                 ("expect", conn_id, group, k, "fields", field))
    users: dict[str, int] = {}
    for i, user in enumerate((data.get("server") or {}).get("users", [])):
        if user["name"] in users:
            fail(f"duplicate user name {user['name']!r} (first at server.users[{users[user['name']]}])",
                 ("server", "users", i, "name"))
        if user["name"] in RESERVED_NAMES:
            fail(f"user name {user['name']!r} is taken by a system account or group of the private sshd "
                 f"({', '.join(sorted(RESERVED_NAMES))}); root there is the host's root",
                 ("server", "users", i, "name"))
        users[user["name"]] = i
    for at, requirement in _requirements(data, ()):
        name = requirement.get("feature") or requirement.get("without")
        if name not in features():
            close = difflib.get_close_matches(name, sorted(features()), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(features()))})"
            fail(f"unknown OpenSSH feature {name!r}{hint}", at)
    for i, conn in enumerate(data["connections"]):
        if "raw" in conn:
            mixed = [k for k in ("auth", "actions", "pause", "end") if k in conn]
            if mixed:
                fail(f"a raw connection does no SSH: {', '.join(mixed)} cannot apply", ("connections", i, mixed[0]))
        for k, step in enumerate(conn.get("auth", [])):
            key = step.get("publickey") if isinstance(step, dict) else None
            if isinstance(key, dict) and "algorithm" in key:
                kind = key.get("key", "ed25519")
                if key["algorithm"] not in KEY_SIG_ALGS[kind]:
                    fail(f"an {kind} key cannot sign with {key['algorithm']} (it signs with "
                         f"{', '.join(KEY_SIG_ALGS[kind])})", ("connections", i, "auth", k, "publickey", "algorithm"))
    cycle = _wait_cycle(data["connections"])
    if cycle:
        fail("connections wait for each other: " + "; ".join(text for text, _ in cycle) + " (a deadlock)",
             cycle[0][1])


def _requirements(node: Any, at: tuple) -> list[tuple[tuple, dict[str, Any]]]:
    """Every `requires:` mapping in the scenario data, with where it is."""
    found: list[tuple[tuple, dict[str, Any]]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "requires" and isinstance(value, dict):
                found.append((at + (key,), value))
            else:
                found.extend(_requirements(value, at + (key,)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_requirements(value, at + (i,)))
    return found


# Events a connection logs only once authenticated (a pause before the signed publickey request
# holds them back), and those of its channels (held back by the wait_for before its first channel
# too). Every other event is taken to come as early as possible, so that a cycle is reported only
# when it is certain.
_AFTER_AUTH = ("auth.accepted",)
_CHANNEL_PREFIXES = ("channel.", "session.", "sftp.")


def _wait_cycle(connections: list[dict[str, Any]]) -> list[tuple[str, tuple]] | None:
    """A cycle of connections waiting for each other (after:, pause, wait_for), or None.

    Each connection is a series of gates it passes in order: its start (`after`), the pause before
    its signed publickey request, then each `wait_for` among its actions. A gate waits for another
    connection's event, which that connection logs only past some of its own gates; and a gate
    is reached only past the connection's earlier gates. A cycle in that graph is a deadlock.
    """
    gates: dict[str, list[tuple[int, dict[str, Any], str, tuple]]] = {}
    first_channel: dict[str, int] = {}
    for i, conn in enumerate(connections):
        own = gates.setdefault(conn["id"], [])
        if conn.get("after"):
            own.append((0, conn["after"], "after", ("connections", i, "after")))
        for j, pause in enumerate(conn.get("pause", [])):
            own.append((1, pause["until"], "pause", ("connections", i, "pause", j)))
        gate = 2
        for j, action in enumerate(conn.get("actions", [])):
            if "wait_for" in action:
                target = {"connection": conn["id"], **action["wait_for"]}
                own.append((gate, target, "wait_for", ("connections", i, "actions", j, "wait_for")))
                gate += 1
            elif ("session" in action or "forward" in action) and conn["id"] not in first_channel:
                first_channel[conn["id"]] = gate - 1

    def needed(conn_id: str, event: str) -> int:
        """The highest gate `conn_id` passes before it can log `event`."""
        if event.startswith(_CHANNEL_PREFIXES):
            return max(first_channel.get(conn_id, 1), 1)
        return 1 if event in _AFTER_AUTH else 0

    def below(conn_id: str, gate: int) -> tuple[str, int] | None:
        """The connection's highest real gate at or below `gate`."""
        found = [g for g, *_ in gates.get(conn_id, []) if g <= gate]
        return (conn_id, max(found)) if found else None

    edges: dict[tuple[str, int], list[tuple[tuple[str, int], str, tuple]]] = {}
    for conn_id, own in gates.items():
        for gate, target, kind, at in own:
            node = (conn_id, gate)
            earlier = below(conn_id, gate - 1)
            if earlier:
                edges.setdefault(node, []).append((earlier, "", at))
            other = below(target["connection"], needed(target["connection"], target["event"]))
            if other:
                text = f"{conn_id} waits ({kind}) for {target['connection']}'s {target['event']}"
                edges.setdefault(node, []).append((other, text, at))
    state: dict[tuple[str, int], int] = {}
    path: list[tuple[tuple[str, int], str, tuple]] = []

    def visit(node: tuple[str, int]) -> list[tuple[str, tuple]] | None:
        state[node] = 1
        for nxt, text, at in edges.get(node, []):
            path.append((node, text, at))
            if state.get(nxt) == 1:
                start = next(k for k, (n, _, _) in enumerate(path) if n == nxt)
                return [(t, a) for _, t, a in path[start:] if t]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
            path.pop()
        state[node] = 2
        return None

    for node in list(edges):
        if state.get(node) is None:
            found = visit(node)
            if found:
                return found
    return None


# -- entry points -------------------------------------------------------------------------------
def read_text(path: str) -> str:
    """The whole file as text, read no further than MAX_SOURCE_BYTES (a scenario, a spec)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise BadInputError("scenario file not found", file=path) from None
    except IsADirectoryError:
        raise BadInputError("is a directory, not a scenario file", file=path) from None
    except OSError as exc:
        raise BadInputError(f"cannot read: {exc.strerror}", file=path) from None
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise BadInputError("is a directory, not a scenario file", file=path)
        return read_bounded(fd, path)
    except OSError as exc:
        raise BadInputError(f"cannot read: {exc.strerror}", file=path) from None
    finally:
        os.close(fd)


def file_defaults(text: str, path: str, variables: dict[str, Any],
                  deadline: float | None = None) -> tuple[dict[str, Any], dict[str, list[Any]], dict]:
    """The file's own `vars` and `matrix` (and the positions of that reading).

    Read from a lenient rendering with the caller's variables (undefined values become empty);
    when even that fails, from the file's text with its jinja2 tags blanked out, so defaults
    written as plain YAML survive a template that needs them to render. A refusal (sandbox,
    bounds) is never swallowed: it is the real error.
    """
    data: Any = None
    positions: dict = {}
    try:
        first = render(text, path, variables, strict=False, locate=False, deadline=deadline)
        data, positions = load_yaml_with_positions(first, path, locate=False)
    except TemplateRefused:
        raise
    except BadInputError:
        blanked = "\n".join(re.sub(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", "", row) for row in text.split("\n"))
        try:
            data, positions = load_yaml_with_positions(blanked, path, locate=False)
        except BadInputError:
            data = None
    if not isinstance(data, dict):
        return {}, {}, positions
    defaults, matrix = data.get("vars"), data.get("matrix")
    return (dict(defaults) if isinstance(defaults, dict) else {},
            {k: v for k, v in matrix.items() if isinstance(v, list)} if isinstance(matrix, dict) else {},
            positions)


def load_scenarios(path: str, variables: dict[str, Any] | None = None) -> list[Scenario]:
    """All scenarios a file stands for: one, or one per `matrix` combination (at most MAX_MATRIX_CELLS).

    The first reading (for `vars` and `matrix`) and the first scenario's rendering share one
    MAX_RENDER_SECONDS; each further matrix cell has its own.
    """
    text = read_text(path)
    deadline: float | None = render_deadline()
    defaults, matrix, positions = file_defaults(text, path, dict(variables or {}), deadline)
    combos: Iterator[dict[str, Any]]
    if matrix:
        cells = math.prod(len(v) for v in matrix.values())
        if cells > MAX_MATRIX_CELLS:
            pos = positions.get(("matrix",)) or (path, None, None)
            raise BadInputError(f"the matrix expands to {cells} scenarios (the limit is {MAX_MATRIX_CELLS})",
                                file=path, line=pos[1], column=pos[2], key="matrix")
        keys = list(matrix)
        combos = (dict(zip(keys, values, strict=True)) for values in itertools.product(*(matrix[k] for k in keys)))
    else:
        combos = iter([{}])
    scenarios = []
    for combo in combos:
        context = {**defaults, **combo, **(variables or {})}
        try:
            scenario = _load_one(text, path, context, deadline)
            deadline = None
        except BadInputError as exc:
            if combo:
                # Only one combination may be at fault: say which.
                exc.message += " (matrix: " + ", ".join(f"{k}={v}" for k, v in combo.items()) + ")"
            raise
        if combo:
            scenario.cell = ",".join(f"{k}={v}" for k, v in combo.items())
            scenario.name += f"[{scenario.cell}]"
        scenarios.append(scenario)
    return scenarios


def load_scenario(path: str, variables: dict[str, Any] | None = None) -> Scenario:
    """One scenario (the first matrix combination, if the file has a matrix)."""
    return load_scenarios(path, variables)[0]


def scenario_from_data(data: Any, path: str, text: str | None = None) -> Scenario:
    """A scenario from data made by sshsim itself (`replay`'s inferred scenario): checked like a
    file, but never rendered with jinja2, so no value in it is ever template code.

    `text`, when given, is that data as the YAML file `path` holds, for errors to name its lines;
    without it errors name `path` alone.
    """
    positions: dict[tuple, Position] = {}
    if text is not None:
        data, positions = load_yaml_with_positions(text, path)
    return _checked(data, positions, path, {})


def _load_one(text: str, path: str, context: dict[str, Any], deadline: float | None = None) -> Scenario:
    rendered = render(text, path, context, deadline=deadline)
    data, positions = load_yaml_with_positions(rendered, path)
    return _checked(data, positions, path, context)


def _checked(data: Any, positions: dict[tuple, Position], path: str, context: dict[str, Any]) -> Scenario:
    if data is None:
        raise BadInputError("empty scenario file", file=path, line=1)
    if not isinstance(data, dict):
        raise BadInputError(f"a scenario is a mapping of keys (name, server, connections, expect), "
                            f"not a {yaml_kind(data)}", file=path, line=1, column=1)
    error = schema_error(data, positions, path, scenario_schema(), _PATTERN_HINTS)
    if error is not None:
        raise error
    _check_meaning(data, positions, path)
    return build_scenario(data, path, positions, context)
