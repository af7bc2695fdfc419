"""Read scenario files: jinja2 first, then YAML with positions, then the JSON Schema, then meaning.

Every problem becomes a one-line `BadInputError` naming the file, line, column and key path, so
a user can go straight to it; nothing here ever shows a traceback for bad input.
"""

from __future__ import annotations

import itertools
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import jinja2
import jsonschema
import yaml

from simulator.errors import BadInputError
from simulator.scenario.model import Position, Scenario, build_scenario

_SCHEMA: dict[str, Any] | None = None


def scenario_schema() -> dict[str, Any]:
    """The published JSON Schema of scenario files (simulator/schema/scenario.schema.json)."""
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = json.loads(resources.files("simulator").joinpath("schema/scenario.schema.json").read_text())
    return _SCHEMA


# -- jinja2 -------------------------------------------------------------------------------------
def render(text: str, path: str, variables: dict[str, Any], *, strict: bool = True, locate: bool = True) -> str:
    """Render the file as a jinja2 template; includes resolve relative to the file's folder.

    With `locate`, an error names the YAML key of its line too (which costs another reading).
    """
    folder = str(Path(path).resolve().parent)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([folder]),
        undefined=jinja2.StrictUndefined if strict else jinja2.ChainableUndefined,
        keep_trailing_newline=True,
    )

    def key_of(where: str, line: int | None) -> str | None:
        return _key_at_line(text, path, variables, line) if locate and where == path else None

    try:
        template = env.from_string(text)
        template.filename = path  # type: ignore[attr-defined]
        return template.render(**variables)
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename if exc.filename and exc.filename != "<template>" else path
        raise BadInputError(f"template error: {exc.message}", file=where, line=exc.lineno,
                            key=key_of(where, exc.lineno)) from None
    except jinja2.TemplateNotFound as exc:
        where, line = _template_position(exc, path)
        raise BadInputError(f"template include not found: {exc.name}", file=where, line=line,
                            key=key_of(where, line)) from None
    except jinja2.UndefinedError as exc:
        where, line = _template_position(exc, path)
        message = exc.message or "undefined value"
        raise BadInputError(f"template error: {message}", file=where, line=line,
                            column=_name_column(text, line, message) if where == path else None,
                            key=key_of(where, line)) from None
    except Exception as exc:  # errors raised by template code (filters, arithmetic)
        where, line = _template_position(exc, path)
        raise BadInputError(f"template error: {type(exc).__name__}: {exc}", file=where, line=line,
                            key=key_of(where, line)) from None


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


def _key_at_line(text: str, path: str, variables: dict[str, Any], line: int | None) -> str | None:
    """The YAML key path a template line stands for, to name it in a template error.

    First the file rendered leniently (undefined values become empty; only when rendering kept
    every line where it was), else the template text with its jinja2 tags blanked out (for syntax
    errors, which no rendering survives): see `_yaml_key_at`.
    """
    if line is None:
        return None
    try:
        lenient = render(text, path, variables, strict=False, locate=False)
        if lenient.count("\n") == text.count("\n"):
            found = _yaml_key_at(lenient, path, line)
            if found:
                return found
    except BadInputError:
        pass
    rows = [re.sub(r"\{#.*?#\}|\{%.*?%\}", "", re.sub(r"\{\{.*?\}\}", "x", row)) for row in text.split("\n")]
    return _yaml_key_at("\n".join(rows), path, line)


def _yaml_key_at(text: str, path: str, line: int) -> str | None:
    """The deepest key path whose key or value starts on `line`, reading the YAML as well as it goes.

    The text is read as is, then with that line's value replaced by a placeholder (an unclosed
    bracket or a bad template expression is usually the value of the key on its line).
    """
    lines = text.split("\n")
    if not 0 < line <= len(lines):
        return None
    texts = [text]
    key = re.match(r"^(\s*(?:-\s+)?[^\s#:{\[\]},][^:#]*:)(?:\s|$)", lines[line - 1])
    if key:
        texts.append("\n".join(lines[: line - 1] + [key.group(1) + " x"] + lines[line:]))
    for candidate in texts:
        try:
            _, positions = load_yaml_with_positions(candidate, path, locate=False)
        except BadInputError:
            continue
        on_line = [at for at, pos in positions.items() if pos[1] == line and at]
        if on_line:
            return _key_path(max(on_line, key=len))
    return None


# -- YAML with positions ------------------------------------------------------------------------
def load_yaml_with_positions(text: str, path: str, *, locate: bool = True) -> tuple[Any, dict[tuple, Position]]:
    """Parse YAML keeping (file, line, column) of every key and value by its path.

    With `locate`, a syntax error names the key it is in too, where a tolerant reading finds it.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        cause = exc.context_mark if exc.problem and exc.context and exc.context_mark is not None else None
        if cause is not None and cause is not mark:
            # "expected ',' or ']'" is found where the parser noticed; the cause is often the
            # unclosed bracket or quote the context names.
            problem += f" ({exc.context} at line {cause.line + 1}, column {cause.column + 1})"
        key = None
        if locate:
            for at_line in dict.fromkeys(m.line + 1 for m in (cause, mark) if m is not None):
                key = key or _yaml_key_at(text, path, at_line)
        raise BadInputError(f"YAML syntax error: {problem}", file=path, line=mark.line + 1 if mark else None,
                            column=mark.column + 1 if mark else None, key=key) from None
    except yaml.YAMLError as exc:
        raise BadInputError(f"YAML error: {exc}", file=path) from None
    positions: dict[tuple, Position] = {}
    if node is None:
        return None, positions
    constructor = yaml.SafeLoader("")

    def build(n: yaml.Node, at: tuple) -> Any:
        positions[at] = (path, n.start_mark.line + 1, n.start_mark.column + 1)
        if isinstance(n, yaml.MappingNode):
            # Merge keys (<<: *defaults) become ordinary keys placed first, each keeping its own
            # position; the mapping's own keys then override them, as YAML says. (On a copy: an
            # anchored mapping is shared by every alias of it and must stay as written.)
            own = sum(1 for key_node, _ in n.value if key_node.tag != "tag:yaml.org,2002:merge")
            n = yaml.MappingNode(n.tag, list(n.value), n.start_mark, n.end_mark, n.flow_style)
            try:
                constructor.flatten_mapping(n)
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark or n.start_mark
                raise BadInputError(f"bad merge key: {exc.problem}", file=path, line=mark.line + 1,
                                    column=mark.column + 1, key=_key_path(at)) from None
            out: dict[Any, Any] = {}
            merged = len(n.value) - own
            from_merge: set[Any] = set()
            for index, (key_node, value_node) in enumerate(n.value):
                try:
                    key = constructor.construct_object(key_node, deep=True)
                except yaml.YAMLError as exc:
                    raise BadInputError(f"bad key: {exc}", file=path, line=key_node.start_mark.line + 1,
                                        column=key_node.start_mark.column + 1, key=_key_path(at)) from None
                if not isinstance(key, (str, int, float, bool)):
                    raise BadInputError(f"mapping keys must be plain values, not a {_yaml_kind(key)}", file=path,
                                        line=key_node.start_mark.line + 1, column=key_node.start_mark.column + 1,
                                        key=_key_path(at))
                if index < merged:
                    from_merge.add(key)
                elif key in from_merge:
                    from_merge.discard(key)
                    del out[key]
                if key in out and key not in from_merge:
                    first = positions.get(at + (("key", key),))
                    seen = f" (first at line {first[1]})" if first else ""
                    raise BadInputError(f"duplicate key {key!r}{seen}", file=path,
                                        line=key_node.start_mark.line + 1, column=key_node.start_mark.column + 1,
                                        key=_key_path(at + (key,)))
                positions[at + (("key", key),)] = (path, key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                out[key] = build(value_node, at + (key,))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [build(item, at + (i,)) for i, item in enumerate(n.value)]
        try:
            return constructor.construct_object(n, deep=True)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise BadInputError(f"bad value: {problem}", file=path, line=n.start_mark.line + 1,
                                column=n.start_mark.column + 1, key=_key_path(at)) from None

    return build(node, ()), positions


def _yaml_kind(value: Any) -> str:
    return {dict: "mapping", list: "list", tuple: "list"}.get(type(value), type(value).__name__)


def _key_path(at: tuple) -> str:
    """connections[0].auth[1] style; ("key", name) steps (a key's own position) read as the name."""
    parts: list[str] = []
    for part in at:
        if isinstance(part, tuple) and len(part) == 2 and part[0] == "key":
            part = part[1]
        if isinstance(part, int) and not isinstance(part, bool):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts) or "(top)"


# -- schema and meaning -------------------------------------------------------------------------
def _schema_error(data: Any, positions: dict[tuple, Position], path: str,
                  schema: dict[str, Any] | None = None) -> BadInputError | None:
    """The first error of `data` against `schema` (the scenario schema unless given), positioned."""
    validator = jsonschema.Draft202012Validator(schema or scenario_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if not errors:
        return None
    error = _most_specific(errors[0])
    at = tuple(error.absolute_path)

    def at_key(key: str, message: str) -> BadInputError:
        pos = positions.get(at + (("key", key),)) or positions.get(at) or _nearest(positions, at)
        return BadInputError(message, file=path, line=pos[1] if pos else None, column=pos[2] if pos else None,
                             key=_key_path(at + (key,)))

    if error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        extra = _unknown_keys(error.instance, known)
        if extra:
            return at_key(extra[0], f"unknown key {extra[0]!r}{_suggest(extra[0], known)}")
    if error.validator in ("oneOf", "anyOf") and isinstance(error.instance, dict):
        # No alternative fits a mapping: most often a misspelt key ({pasword: x}).
        allowed = {k: None for branch in error.validator_value for k in _branch_keys(branch)}
        extra = _unknown_keys(error.instance, allowed)
        if extra and allowed:
            return at_key(extra[0], f"unknown key {extra[0]!r}{_suggest(extra[0], allowed)}")
        kinds = _single_keys(error.validator_value)
        both = [k for k in kinds if k in error.instance]
        if len(both) > 1:
            return at_key(both[1], f"one of {', '.join(kinds)} per item, not both {both[0]!r} and {both[1]!r}")
    pos = positions.get(at) or _nearest(positions, at)
    return BadInputError(_describe(error), file=path, line=pos[1] if pos else None,
                         column=pos[2] if pos else None, key=_key_path(at))


# Failure of one of these at the value itself means "this alternative is not what was meant".
_DISCRIMINATING = frozenset(("type", "required", "enum", "const"))


def _most_specific(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """For a oneOf failure, the error inside the alternative the writer meant.

    Scenario alternatives are told apart by type or by their one required key ({session: ...}
    or {forward: ...}), so an alternative that fails with a type, required or enum error at the
    value itself is not the one meant; when exactly the others remain, their first (shallowest)
    error is the one a person can act on. When none remains, the oneOf error itself is reported
    (as "expected X or Y").
    """
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        return error
    branches: dict[Any, list[jsonschema.ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    meant = [errs for errs in branches.values()
             if not any(not e.relative_path and e.validator in _DISCRIMINATING for e in errs)]
    if len(meant) != 1:
        return error
    first = sorted(meant[0], key=lambda e: (len(e.absolute_path), str(e.absolute_path)))[0]
    return _most_specific(first)


def _branch_keys(schema: dict[str, Any]) -> list[str]:
    return list(schema.get("properties", {})) if isinstance(schema, dict) else []


def _unknown_keys(instance: Any, allowed: Any) -> list[str]:
    return sorted(str(k) for k in instance if k not in allowed) if isinstance(instance, dict) else []


def _suggest(key: str, allowed: Any) -> str:
    import difflib

    names = sorted(str(k) for k in allowed)
    close = difflib.get_close_matches(key, names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(names)})"


def _single_keys(branches: list[Any]) -> list[str]:
    """The keys that tell alternatives apart when each is a mapping with one required key."""
    keys = [b.get("required", []) for b in branches if isinstance(b, dict) and b.get("type") == "object"]
    if len(keys) != len(branches) or any(len(k) != 1 for k in keys):
        return []
    return [k[0] for k in keys]


def _alternative(schema: dict[str, Any]) -> str:
    """How one oneOf alternative reads in a message."""
    if "enum" in schema:
        return " or ".join(json.dumps(v) if not isinstance(v, str) else v for v in schema["enum"])
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1].replace("_", " ")
    if schema.get("type") == "object" and schema.get("required"):
        return f"a mapping with {', '.join(repr(k) for k in schema['required'])}"
    kind = schema.get("type")
    if kind == "object":
        return "a mapping"
    if kind == "array":
        return "a list"
    return str(kind or "value")


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
    "chroot_dirs": "is not a valid directory name (letters, digits, '.', '_', '-', '/')",
}


def _describe(error: jsonschema.ValidationError) -> str:
    instance = error.instance
    shown = json.dumps(instance) if not isinstance(instance, (dict, list)) else _yaml_kind(instance)
    value = error.validator_value
    if error.validator == "type":
        kinds = value if isinstance(value, list) else [value]
        return f"expected {' or '.join(kinds)}, got {shown}"
    if error.validator == "enum":
        return f"{shown} is not one of {', '.join(map(str, value))}"
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    if error.validator == "pattern":
        names = [p for p in error.absolute_path if isinstance(p, str)]
        hint = _PATTERN_HINTS.get(names[-1]) if names else None
        return f"{shown} {hint}" if hint else f"{shown} does not match {value}"
    if error.validator in ("oneOf", "anyOf"):
        keys = _single_keys(value)
        if keys:
            return f"expected a mapping with one of {', '.join(repr(k) for k in keys)}, got {shown}"
        return f"expected {' or '.join(_alternative(b) for b in value)}, got {shown}"
    if error.validator == "minimum":
        return f"{shown} is less than the minimum, {value}"
    if error.validator == "maximum":
        return f"{shown} is greater than the maximum, {value}"
    if error.validator == "exclusiveMinimum":
        return f"{shown} must be greater than {value}"
    if error.validator == "minItems":
        return f"needs at least {value} item{'s' if value != 1 else ''}, got {len(instance)}"
    if error.validator == "maxItems":
        return f"takes at most {value} item{'s' if value != 1 else ''}, got {len(instance)}"
    return error.message


def _nearest(positions: dict[tuple, Position], at: tuple) -> Position | None:
    while at:
        at = at[:-1]
        if at in positions:
            return positions[at]
    return positions.get(())


def _check_meaning(data: dict[str, Any], positions: dict[tuple, Position], path: str) -> None:
    """What the schema cannot say: ids unique and referenced, profiles and events known."""
    from simulator.driver.profiles import check_override, known_profiles
    from simulator.scenario.events import known_event_names

    def fail(message: str, at: tuple) -> None:
        pos = positions.get(at) or _nearest(positions, at)
        raise BadInputError(message, file=path, line=pos[1] if pos else None,
                            column=pos[2] if pos else None, key=_key_path(at))

    ids: list[str] = []
    for i, conn in enumerate(data["connections"]):
        if conn["id"] in ids:
            fail(f"duplicate connection id {conn['id']!r}", ("connections", i, "id"))
        ids.append(conn["id"])
    profiles = known_profiles()
    events = known_event_names()

    def check_event(name: str, at: tuple) -> None:
        if events and name not in events:
            import difflib

            close = difflib.get_close_matches(name, sorted(events), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            fail(f"unknown event {name!r}{hint}", at)

    for i, conn in enumerate(data["connections"]):
        profile = conn.get("profile")
        name = profile.get("base") if isinstance(profile, dict) else profile
        at = ("connections", i, "profile") + (("base",) if isinstance(profile, dict) else ())
        if name is not None and name not in profiles:
            import difflib

            close = difflib.get_close_matches(name, sorted(profiles), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(profiles))})"
            fail(f"unknown client profile {name!r}{hint}", at)
        if isinstance(profile, dict):
            check_override(profile, positions, path, ("connections", i, "profile"))
        after = conn.get("after")
        if after:
            if after["connection"] not in ids:
                fail(f"'after' names unknown connection {after['connection']!r}", ("connections", i, "after", "connection"))
            if after["connection"] == conn["id"]:
                fail("a connection cannot wait for itself to start", ("connections", i, "after", "connection"))
            check_event(after["event"], ("connections", i, "after", "event"))
        for j, pause in enumerate(conn.get("pause", [])):
            target = pause["until"]["connection"]
            if target not in ids:
                fail(f"'pause' names unknown connection {target!r}", ("connections", i, "pause", j, "until", "connection"))
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


# -- entry points -------------------------------------------------------------------------------
def read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInputError("scenario file not found", file=path) from None
    except IsADirectoryError:
        raise BadInputError("is a directory, not a scenario file", file=path) from None
    except UnicodeDecodeError as exc:
        raw = exc.object[: exc.start]
        line = raw.count(b"\n") + 1
        column = len(raw) - (raw.rfind(b"\n") + 1) + 1
        raise BadInputError(f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})",
                            file=path, line=line, column=column) from None
    except OSError as exc:
        raise BadInputError(f"cannot read: {exc.strerror}", file=path) from None


def _defaults(text: str, path: str) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The file's own `vars` and `matrix`, read from a lenient first rendering."""
    try:
        first = render(text, path, {}, strict=False, locate=False)
        data = yaml.safe_load(first)
    except (BadInputError, yaml.YAMLError):
        return {}, {}
    if not isinstance(data, dict):
        return {}, {}
    variables = data.get("vars") if isinstance(data.get("vars"), dict) else {}
    matrix = data.get("matrix") if isinstance(data.get("matrix"), dict) else {}
    return dict(variables), {k: v for k, v in matrix.items() if isinstance(v, list)}


def load_scenarios(path: str, variables: dict[str, Any] | None = None) -> list[Scenario]:
    """All scenarios a file stands for: one, or one per `matrix` combination."""
    text = read_text(path)
    defaults, matrix = _defaults(text, path)
    combos: Iterator[dict[str, Any]]
    if matrix:
        keys = list(matrix)
        combos = (dict(zip(keys, values)) for values in itertools.product(*(matrix[k] for k in keys)))
    else:
        combos = iter([{}])
    scenarios = []
    for combo in combos:
        context = {**defaults, **combo, **(variables or {})}
        try:
            scenario = _load_one(text, path, context)
        except BadInputError as exc:
            if combo:
                # Only one combination may be at fault: say which.
                exc.message += " (matrix: " + ", ".join(f"{k}={v}" for k, v in combo.items()) + ")"
            raise
        if combo:
            scenario.name += "[" + ",".join(f"{k}={v}" for k, v in combo.items()) + "]"
        scenarios.append(scenario)
    return scenarios


def load_scenario(path: str, variables: dict[str, Any] | None = None) -> Scenario:
    """One scenario (the first matrix combination, if the file has a matrix)."""
    return load_scenarios(path, variables)[0]


def _load_one(text: str, path: str, context: dict[str, Any]) -> Scenario:
    rendered = render(text, path, context)
    data, positions = load_yaml_with_positions(rendered, path)
    if data is None:
        raise BadInputError("empty scenario file", file=path, line=1)
    if not isinstance(data, dict):
        raise BadInputError(f"a scenario is a mapping of keys (name, server, connections, expect), "
                            f"not a {_yaml_kind(data)}", file=path, line=1, column=1)
    error = _schema_error(data, positions, path)
    if error is not None:
        raise error
    _check_meaning(data, positions, path)
    return build_scenario(data, path, positions, context)
