"""Read YAML a user wrote: bounded, with the (file, line, column) of every key and value, and
JSON-Schema errors placed at the key they are about.

Scenario files (simulator/scenario/loader.py) and client profiles (simulator/profiles.py) are
both read through here, so both report a bad key as `FILE:LINE:COLUMN: key: what is wrong`; this
module knows neither format.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import jsonschema
import yaml

from simulator.errors import BadInputError
from simulator.limits import MAX_YAML_DEPTH, MAX_YAML_NODES

# Where a value came from in a file: (file, line, column), 1-based.
Position = tuple[str, int, int]


def yaml_key_at(text: str, path: str, line: int) -> str | None:
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
            return key_path(max(on_line, key=len))
    return None


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
                key = key or yaml_key_at(text, path, at_line)
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
                                    column=mark.column + 1, key=key_path(at)) from None
            out: dict[Any, Any] = {}
            merged = len(n.value) - own
            from_merge: set[Any] = set()
            for index, (key_node, value_node) in enumerate(n.value):
                try:
                    key = constructor.construct_object(key_node, deep=True)
                except yaml.YAMLError as exc:
                    raise BadInputError(f"bad key: {exc}", file=path, line=key_node.start_mark.line + 1,
                                        column=key_node.start_mark.column + 1, key=key_path(at)) from None
                if not isinstance(key, (str, int, float, bool)):
                    raise BadInputError(f"mapping keys must be plain values, not a {yaml_kind(key)}", file=path,
                                        line=key_node.start_mark.line + 1, column=key_node.start_mark.column + 1,
                                        key=key_path(at))
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
                                        key=key_path(at + (key,)))
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
                                column=n.start_mark.column + 1, key=key_path(at)) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise BadInputError(f"{n.value} is not a finite number", file=path, line=n.start_mark.line + 1,
                                column=n.start_mark.column + 1, key=key_path(at))
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


_KIND_NAMES: dict[type, str] = {dict: "mapping", list: "list", tuple: "list"}


def yaml_kind(value: Any) -> str:
    return _KIND_NAMES.get(type(value), type(value).__name__)


def key_path(at: tuple) -> str:
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


# -- schema errors, placed in the file -----------------------------------------------------------
def schema_error(data: Any, positions: dict[tuple, Position], path: str, schema: dict[str, Any],
                 pattern_hints: Mapping[str, str] | None = None) -> BadInputError | None:
    """The first error of `data` against `schema`, positioned. `pattern_hints`: what a `pattern`
    stands for, by the name of the key it checks (a schema's regexes are not for reading)."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if not errors:
        return None
    error = _most_specific(errors[0])
    at = tuple(error.absolute_path)

    def at_key(key: str, message: str) -> BadInputError:
        pos = positions.get(at + (("key", key),)) or positions.get(at) or nearest(positions, at)
        return BadInputError(message, file=path, line=pos[1] if pos else None, column=pos[2] if pos else None,
                             key=key_path(at + (key,)))

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
    pos = positions.get(at) or nearest(positions, at)
    return BadInputError(_describe(error, pattern_hints or {}), file=path, line=pos[1] if pos else None,
                         column=pos[2] if pos else None, key=key_path(at))


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




def _describe(error: jsonschema.ValidationError, pattern_hints: Mapping[str, str]) -> str:
    instance: Any = error.instance  # the failing part of the document: any YAML value
    shown = json.dumps(instance) if not isinstance(instance, (dict, list)) else yaml_kind(instance)
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
        hint = pattern_hints.get(names[-1]) if names else None
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


def nearest(positions: dict[tuple, Position], at: tuple) -> Position | None:
    while at:
        at = at[:-1]
        if at in positions:
            return positions[at]
    return positions.get(())
