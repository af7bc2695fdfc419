"""Read scenario files: jinja2 first, then YAML with positions, then the JSON Schema, then meaning.

Every problem becomes a one-line `BadInputError` naming the file, line, column and key path, so
a user can go straight to it; nothing here ever shows a traceback for bad input.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import stat
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

import jinja2
import jsonschema
import yaml
from jinja2.sandbox import SecurityError

from simulator import limits
from simulator.errors import BadInputError
from simulator.limits import MAX_MATRIX_CELLS, MAX_RENDERED_CHARS, MAX_YAML_DEPTH, MAX_YAML_NODES, QUOTE_CHARS
from simulator.scenario.model import Position, Scenario, build_scenario
from simulator.scenario.template import Refusal, SandboxEnvironment, TemplateRefused, read_bounded, render_deadline
from simulator.target.accounts import RESERVED_NAMES

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
    `_yaml_key_at`.
    """
    if line is None:
        return None
    if deadline is not None:
        try:
            lenient = render(text, path, variables, strict=False, locate=False, deadline=deadline)
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
    Nesting and the node count after aliases are bounded first (`check_yaml_shape`): composing is
    recursive and aliases multiply.
    """
    check_yaml_shape(text, path)
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
            value = constructor.construct_object(n, deep=True)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise BadInputError(f"bad value: {problem}", file=path, line=n.start_mark.line + 1,
                                column=n.start_mark.column + 1, key=_key_path(at)) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise BadInputError(f"{n.value} is not a finite number", file=path, line=n.start_mark.line + 1,
                                column=n.start_mark.column + 1, key=_key_path(at))
        return value

    return build(node, ()), positions


_EVENT_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def check_yaml_shape(text: str, path: str) -> None:
    """Refuse YAML nested deeper than MAX_YAML_DEPTH or with more than MAX_YAML_NODES nodes once
    its aliases are expanded (a billion-laughs file), reading only its event stream (flat, no
    recursion, nothing expanded: each anchor's expanded size is a number).

    A syntax error ends the check where it is; composing then reports it.
    """
    def fail(message: str, mark: Any) -> None:
        raise BadInputError(message, file=path, line=mark.line + 1, column=mark.column + 1)

    for loader in dict.fromkeys((_EVENT_LOADER, yaml.SafeLoader)):
        sizes: dict[str, int] = {}
        open_nodes: list[list[Any]] = []  # [anchor, expanded node count so far]
        total = 0

        def add(count: int, mark: Any, open_nodes: list[list[Any]] = open_nodes) -> None:
            nonlocal total
            if open_nodes:
                open_nodes[-1][1] += count
                count = open_nodes[-1][1]
            else:
                total += count
                count = total
            if count > MAX_YAML_NODES:
                fail(f"YAML with more than {MAX_YAML_NODES} nodes once aliases are expanded", mark)

        try:
            for event in yaml.parse(text, Loader=loader):
                if isinstance(event, yaml.AliasEvent):
                    add(sizes.get(event.anchor or "", 1), event.start_mark)
                elif isinstance(event, yaml.ScalarEvent):
                    if event.anchor:
                        sizes[event.anchor] = 1
                    add(1, event.start_mark)
                elif isinstance(event, yaml.CollectionStartEvent):
                    if len(open_nodes) >= MAX_YAML_DEPTH:
                        fail(f"YAML nested deeper than {MAX_YAML_DEPTH} levels", event.start_mark)
                    open_nodes.append([event.anchor, 1])
                elif isinstance(event, yaml.CollectionEndEvent):
                    anchor, count = open_nodes.pop()
                    if anchor:
                        sizes[anchor] = count
                    add(count, event.start_mark)
            return
        except yaml.YAMLError:
            continue  # the C parser may stop earlier than the one that reports: read on with it


def load_yaml_bounded(text: str, path: str) -> Any:
    """Plain data from YAML text, with the bounds of `load_yaml_with_positions` (no positions kept)."""
    return load_yaml_with_positions(text, path, locate=False)[0]


_KIND_NAMES: dict[type, str] = {dict: "mapping", list: "list", tuple: "list"}


def _yaml_kind(value: Any) -> str:
    return _KIND_NAMES.get(type(value), type(value).__name__)


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

    # What the failed keyword holds depends on the keyword (jsonschema types it loosely).
    value: Any = error.validator_value
    if error.validator == "additionalProperties" and isinstance(error.schema, Mapping):
        known = error.schema.get("properties", {})
        extra = _unknown_keys(error.instance, known)
        if extra:
            return at_key(extra[0], f"unknown key {extra[0]!r}{_suggest(extra[0], known)}")
    if error.validator in ("oneOf", "anyOf") and isinstance(error.instance, dict):
        # No alternative fits a mapping: most often a misspelt key ({pasword: x}).
        allowed = {k: None for branch in value for k in _branch_keys(branch)}
        extra = _unknown_keys(error.instance, allowed)
        if extra and allowed:
            return at_key(extra[0], f"unknown key {extra[0]!r}{_suggest(extra[0], allowed)}")
        kinds = _single_keys(value)
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


def _describe(error: jsonschema.ValidationError) -> str:
    instance: Any = error.instance  # the failing part of the document: any YAML value
    shown = json.dumps(instance) if not isinstance(instance, (dict, list)) else _yaml_kind(instance)
    value: Any = error.validator_value  # what the failed keyword holds depends on the keyword
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
    cycle = _wait_cycle(data["connections"])
    if cycle:
        fail("connections wait for each other: " + "; ".join(text for text, _ in cycle) + " (a deadlock)",
             cycle[0][1])


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
                            f"not a {_yaml_kind(data)}", file=path, line=1, column=1)
    error = _schema_error(data, positions, path)
    if error is not None:
        raise error
    _check_meaning(data, positions, path)
    return build_scenario(data, path, positions, context)
