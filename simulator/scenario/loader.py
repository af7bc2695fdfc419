"""Read scenario files: jinja2 first, then YAML with positions, then the JSON Schema, then meaning.

Every problem becomes a one-line `BadInputError` naming the file, line, column and key path, so
a user can go straight to it; nothing here ever shows a traceback for bad input.
"""

from __future__ import annotations

import itertools
import json
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
def render(text: str, path: str, variables: dict[str, Any], *, strict: bool = True) -> str:
    """Render the file as a jinja2 template; includes resolve relative to the file's folder."""
    folder = str(Path(path).resolve().parent)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([folder]),
        undefined=jinja2.StrictUndefined if strict else jinja2.ChainableUndefined,
        keep_trailing_newline=True,
    )
    try:
        template = env.from_string(text)
        template.filename = path  # type: ignore[attr-defined]
        return template.render(**variables)
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename if exc.filename and exc.filename != "<template>" else path
        raise BadInputError(f"template error: {exc.message}", file=where, line=exc.lineno) from None
    except jinja2.TemplateNotFound as exc:
        raise BadInputError(f"template include not found: {exc.name}", file=path,
                            line=_template_line(exc)) from None
    except jinja2.UndefinedError as exc:
        raise BadInputError(f"template error: {exc.message}", file=path, line=_template_line(exc)) from None
    except Exception as exc:  # errors raised by template code (filters, arithmetic)
        raise BadInputError(f"template error: {type(exc).__name__}: {exc}", file=path,
                            line=_template_line(exc)) from None


def _template_line(exc: BaseException) -> int | None:
    """The template line an error was raised at, from jinja2's rewritten traceback."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in ("<template>",) or tb.tb_frame.f_globals.get("__jinja_template__"):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


# -- YAML with positions ------------------------------------------------------------------------
def load_yaml_with_positions(text: str, path: str) -> tuple[Any, dict[tuple, Position]]:
    """Parse YAML keeping (file, line, column) of every key and value by its path."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise BadInputError(f"YAML syntax error: {problem}", file=path,
                            line=mark.line + 1 if mark else None, column=mark.column + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise BadInputError(f"YAML error: {exc}", file=path) from None
    positions: dict[tuple, Position] = {}
    if node is None:
        return None, positions
    constructor = yaml.SafeLoader("")

    def build(n: yaml.Node, at: tuple) -> Any:
        positions[at] = (path, n.start_mark.line + 1, n.start_mark.column + 1)
        if isinstance(n, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in n.value:
                key = constructor.construct_object(key_node, deep=True)
                if not isinstance(key, (str, int, float, bool)):
                    raise BadInputError("mapping keys must be plain values", file=path,
                                        line=key_node.start_mark.line + 1, column=key_node.start_mark.column + 1)
                if key in out:
                    raise BadInputError(f"duplicate key {key!r}", file=path, line=key_node.start_mark.line + 1,
                                        column=key_node.start_mark.column + 1, key=_key_path(at))
                positions[at + (("key", key),)] = (path, key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                out[key] = build(value_node, at + (key,))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [build(item, at + (i,)) for i, item in enumerate(n.value)]
        try:
            return constructor.construct_object(n, deep=True)
        except yaml.YAMLError as exc:
            raise BadInputError(f"bad value: {exc}", file=path, line=n.start_mark.line + 1,
                                column=n.start_mark.column + 1) from None

    return build(node, ()), positions


def _key_path(at: tuple) -> str:
    parts: list[str] = []
    for part in at:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts) or "(top)"


# -- schema and meaning -------------------------------------------------------------------------
def _schema_error(data: Any, positions: dict[tuple, Position], path: str) -> BadInputError | None:
    validator = jsonschema.Draft202012Validator(scenario_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if not errors:
        return None
    error = _most_specific(errors[0])
    at = tuple(error.absolute_path)
    message = _describe(error)
    if error.validator == "additionalProperties":
        extra = _unknown_keys(error)
        if extra:
            key_at = at + (("key", extra[0]),)
            pos = positions.get(key_at) or positions.get(at)
            return BadInputError(f"unknown key {extra[0]!r}{_suggest(extra[0], error)}", file=path,
                                 line=pos[1] if pos else None, column=pos[2] if pos else None,
                                 key=_key_path(at + (extra[0],)))
    pos = positions.get(at) or _nearest(positions, at)
    return BadInputError(message, file=path, line=pos[1] if pos else None, column=pos[2] if pos else None,
                         key=_key_path(at))


def _most_specific(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """For oneOf failures, the branch error that got furthest is the one a person can act on."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        best = jsonschema.exceptions.best_match(error.context)
        if best is not None and len(best.absolute_path) > len(error.absolute_path):
            return _most_specific(best)
    return error


def _unknown_keys(error: jsonschema.ValidationError) -> list[str]:
    allowed = set(error.schema.get("properties", {}))
    return sorted(k for k in error.instance if k not in allowed) if isinstance(error.instance, dict) else []


def _suggest(key: str, error: jsonschema.ValidationError) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(error.schema.get("properties", {})), n=1)
    allowed = ", ".join(sorted(error.schema.get("properties", {})))
    return f" (did you mean {close[0]!r}?)" if close else f" (allowed: {allowed})"


def _describe(error: jsonschema.ValidationError) -> str:
    instance = error.instance
    shown = json.dumps(instance) if not isinstance(instance, (dict, list)) else type(instance).__name__
    if error.validator == "type":
        return f"expected {error.validator_value}, got {shown}"
    if error.validator == "enum":
        return f"{shown} is not one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    if error.validator == "pattern":
        return f"{shown} does not have the expected form"
    if error.validator in ("oneOf", "anyOf"):
        return f"{shown} is not a valid {_key_path(tuple(error.absolute_path)).split('.')[-1] or 'value'}"
    if error.validator in ("minimum", "maximum", "exclusiveMinimum", "minItems", "maxItems"):
        return f"{shown}: {error.message.split(' ', 1)[1] if ' ' in error.message else error.message}"
    return error.message


def _nearest(positions: dict[tuple, Position], at: tuple) -> Position | None:
    while at:
        at = at[:-1]
        if at in positions:
            return positions[at]
    return positions.get(())


def _check_meaning(data: dict[str, Any], positions: dict[tuple, Position], path: str) -> None:
    """What the schema cannot say: ids unique and referenced, profiles and events known."""
    from simulator.driver.profiles import known_profiles
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
        raise BadInputError(f"not UTF-8 text (byte {exc.start})", file=path) from None
    except OSError as exc:
        raise BadInputError(f"cannot read: {exc.strerror}", file=path) from None


def _defaults(text: str, path: str) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The file's own `vars` and `matrix`, read from a lenient first rendering."""
    try:
        first = render(text, path, {}, strict=False)
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
        scenario = _load_one(text, path, context)
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
        raise BadInputError(f"a scenario is a mapping, not a {type(data).__name__}", file=path, line=1, column=1)
    error = _schema_error(data, positions, path)
    if error is not None:
        raise error
    _check_meaning(data, positions, path)
    return build_scenario(data, path, positions, context)
