"""jinja2 for files other people wrote: a sandbox, includes kept in the file's folder, bounded work.

Scenario files and generate specs are templates, and sshsim runs as root: a template must not
reach Python internals (`cycler.__init__.__globals__`), files outside its folder, or the
machine's memory and time. Three layers, each needed:

- jinja2's `ImmutableSandboxedEnvironment`: no `_`-attributes, no unsafe callables, no mutation
  of lists and dicts, `str.format` sandboxed. An unsafe attribute is refused at once (the stock
  sandbox returns an undefined value, which a lenient rendering would print as nothing), and the
  globals are only `range` (the sandbox's bounded one) and `dict`: no `cycler`, `joiner`,
  `lipsum` or `namespace`. Filters are an allow-list of the ones a scenario needs.
- `ConfinedLoader`: `{% include %}`, `{% import %}` and `{% extends %}` read only regular files
  inside the including file's folder, opened one path component at a time relative to that
  folder's descriptor with O_NOFOLLOW. Absolute names, `..` and *every* symlink are refused
  (a symlink that stays inside would be harmless, but telling the two apart means following it;
  refusing all is simple to state and check). Each read stops at MAX_SOURCE_BYTES.
- Bounded work, checked at the template's own control points rather than by a signal: every
  loop iteration (the compiled `for` iterates through `_bounded`), every call, filter, binary
  operator and `~` checks the wall-clock deadline (MAX_RENDER_SECONDS). A signal (SIGALRM) would
  only work on the main thread and would interrupt jinja2 and Python at any point; these checks
  work on any thread (generate prepares scenarios off the main thread) and stop at a clean
  place. Any unbounded amount of work in a template must pass through one of them: loops
  iterate, macros and recursive loops are calls. What one single operation can cost is bounded
  before it runs: `*`, `**`, `+`, `%`, `~`, the widths of `center`/`indent`/`format`, `replace`,
  `join`, `batch`, `slice`; every value made is counted against MAX_TEMPLATE_WORK_CHARS (so
  memory is bounded however values are combined), and the output, made with `generate()`,
  against MAX_RENDERED_CHARS.

Every refusal is a `TemplateRefused` (a `BadInputError`) naming the file and line.
"""

from __future__ import annotations

import errno
import functools
import math
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.sandbox import MAX_RANGE, ImmutableSandboxedEnvironment, SecurityError

from simulator.errors import BadInputError
from simulator.limits import (
    MAX_RENDER_SECONDS,
    MAX_RENDERED_CHARS,
    MAX_SOURCE_BYTES,
    MAX_TEMPLATE_INT_BITS,
    MAX_TEMPLATE_WORK_CHARS,
)


def render_deadline() -> float:
    """When renderings that start now must have ended (several readings of one scenario share it)."""
    return time.monotonic() + MAX_RENDER_SECONDS


class TemplateRefused(BadInputError):
    """A template tried something the sandbox or a bound refuses: never retried leniently."""


class Refusal(SecurityError):
    """Raised inside a rendering; `render` turns it into a TemplateRefused at the right line."""


# Filters a scenario or spec may use; the rest of jinja2's (tojson, urlize, pprint, wordwrap,
# xmlattr, escape...) have no use in YAML and more ways to amplify.
ALLOWED_FILTERS = (
    "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "first",
    "float", "format", "groupby", "indent", "int", "items", "join", "last", "length", "list",
    "lower", "map", "max", "min", "random", "reject", "rejectattr", "replace", "reverse", "round",
    "select", "selectattr", "slice", "sort", "string", "sum", "title", "trim", "truncate",
    "unique", "upper", "wordcount",
)
# Filters that turn their value into text first (soft_str): the value's text size is checked.
_TEXT_FILTERS = frozenset(("capitalize", "center", "format", "indent", "lower", "replace", "string",
                           "title", "trim", "truncate", "upper", "wordcount"))


def read_bounded(fd: int, name: str) -> str:
    """At most MAX_SOURCE_BYTES of UTF-8 text from an open file, else a one-line error."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = os.read(fd, min(1 << 16, MAX_SOURCE_BYTES + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_SOURCE_BYTES:
            raise TemplateRefused(f"larger than {MAX_SOURCE_BYTES} bytes (the limit for a scenario, "
                                  "spec or include)", file=name)
    raw = b"".join(chunks)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        raise BadInputError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})", file=name,
                            line=before.count(b"\n") + 1, column=len(before) - (before.rfind(b"\n") + 1) + 1) from None


class ConfinedLoader(jinja2.BaseLoader):
    """Templates from one folder only, without following any symlink."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        parts = self._parts(template)
        shown = os.path.join(self.folder, *parts)
        try:
            fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            raise jinja2.TemplateNotFound(template) from None
        try:
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                flags = os.O_RDONLY | os.O_NOFOLLOW | (os.O_NONBLOCK if last else os.O_DIRECTORY)
                try:
                    inner = os.open(part, flags, dir_fd=fd)
                except FileNotFoundError:
                    raise jinja2.TemplateNotFound(template) from None
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(
                            os.path.join(self.folder, *parts[: i + 1])):
                        raise Refusal(f"include {template!r}: symlinks are not followed") from None
                    if exc.errno == errno.ENOTDIR:
                        raise jinja2.TemplateNotFound(template) from None
                    raise Refusal(f"include {template!r}: cannot open: {exc.strerror}") from None
                os.close(fd)
                fd = inner
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise Refusal(f"include {template!r}: not a regular file")
            try:
                source = read_bounded(fd, shown)
            except BadInputError as exc:
                raise Refusal(f"include {template!r}: {exc.message}") from None
        finally:
            os.close(fd)
        return source, shown, lambda: False

    @staticmethod
    def _parts(template: Any) -> list[str]:
        if not isinstance(template, str):
            raise Refusal(f"include names a {type(template).__name__}, not a file name")
        if template.startswith("/") or "\0" in template or "\\" in template:
            raise Refusal(f"include {template!r}: only a relative path inside the scenario's folder")
        parts = [p for p in template.split("/") if p not in ("", ".")]
        if not parts or ".." in parts:
            raise Refusal(f"include {template!r}: only a relative path inside the scenario's folder "
                          "('..' is not allowed)")
        return parts


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles loops and `~` through the environment's checks (the sandbox intercepts neither).

    A `for` loop's iterable is written as `environment.bounded_iter(...)` (jinja2 allows no new
    node types, so the iterable is recognised by identity when it is visited).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loop_iterables: set[int] = set()

    def visit_For(self, node: nodes.For, frame: Frame) -> None:  # noqa: N802 (jinja2's naming)
        self._loop_iterables.add(id(node.iter))
        super().visit_For(node, frame)

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        if id(node) in self._loop_iterables:
            self.write("environment.bounded_iter(")
            super().visit(node, *args, **kwargs)
            self.write(")")
            return None
        return super().visit(node, *args, **kwargs)

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:  # noqa: N802
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _text_size(value: Any, limit: int) -> int:
    """About how many characters str(value) has, counting no further than just past `limit`."""
    if isinstance(value, (str, bytes)):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 3 + 1
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        total = 2
        items = value.items() if isinstance(value, dict) else value
        for item in items:
            total += _text_size(item, limit - total) + 2
            if total > limit:
                return total
        return total
    return 32


class SandboxEnvironment(ImmutableSandboxedEnvironment):
    """One rendering's environment: the sandbox, the deadline and the work counted so far."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset(("+", "-", "*", "/", "//", "%", "**"))

    def __init__(self, folder: str, *, strict: bool) -> None:
        super().__init__(loader=ConfinedLoader(folder), keep_trailing_newline=True,
                         undefined=jinja2.StrictUndefined if strict else jinja2.ChainableUndefined,
                         finalize=self._checked_output)
        self.globals = {"range": self.globals["range"], "dict": dict}
        self.filters = {name: self._wrap_filter(name, self.filters[name]) for name in ALLOWED_FILTERS}
        self.deadline = render_deadline()
        self.work = 0

    # -- bookkeeping ----------------------------------------------------------------------------
    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise Refusal(f"rendering took longer than {MAX_RENDER_SECONDS:g} s "
                          "(the limit for reading one scenario or spec)")

    def made(self, value: Any) -> Any:
        """Count a value the template made; refuse one too large, or too much made in all."""
        size = _text_size(value, MAX_TEMPLATE_WORK_CHARS)
        if size > MAX_RENDERED_CHARS and isinstance(value, (str, bytes)):
            raise Refusal(f"a value of {size} characters (the limit is {MAX_RENDERED_CHARS})")
        self.work += size
        if self.work > MAX_TEMPLATE_WORK_CHARS:
            raise Refusal(f"the template builds more than {MAX_TEMPLATE_WORK_CHARS} characters of values")
        return value

    def fits(self, size: int, what: str) -> None:
        """Refuse, before making it, a value that would be too large."""
        if size > MAX_RENDERED_CHARS:
            raise Refusal(f"{what} would make {size} characters (the limit is {MAX_RENDERED_CHARS})")

    # -- the sandbox's hooks ----------------------------------------------------------------------
    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        if isinstance(obj, jinja2.Undefined):  # a lenient reading of an undefined name
            raise Refusal(f"access to attribute {attribute!r} is not allowed")
        raise Refusal(f"access to attribute {attribute!r} of a {type(obj).__name__!r} object is not allowed")

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        __self.tick()
        args = _check_method(__self, __obj, args, kwargs)
        return __self.made(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        self.tick()
        _check_binop(self, operator, left, right)
        result = super().call_binop(context, operator, left, right)
        if isinstance(result, int) and not isinstance(result, bool) and result.bit_length() > MAX_TEMPLATE_INT_BITS:
            raise Refusal(f"a number of more than {MAX_TEMPLATE_INT_BITS} bits")
        return self.made(result)

    def bounded_iter(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            self.tick()
            yield item

    def bounded_concat(self, values: tuple[Any, ...]) -> str:
        self.tick()
        self.fits(sum(_text_size(v, MAX_RENDERED_CHARS + 1) for v in values), "'~'")
        return self.made("".join(map(str, values)))

    def concat(self, chunks: Iterable[str]) -> str:
        """What `{% set %}...{% endset %}`, `{% filter %}`, macros and call blocks capture (jinja2
        joins their buffers with `environment.concat`): literal text repeated by a loop is only
        references until it is joined, so the sum is checked first."""
        kept, size = [], 0
        for chunk in chunks:
            size += len(chunk)
            self.fits(size, "a captured block")
            kept.append(chunk)
        self.tick()
        return self.made("".join(kept))

    def _checked_output(self, value: Any) -> Any:
        self.tick()
        self.fits(_text_size(value, MAX_RENDERED_CHARS + 1), "an output expression")
        return value

    def _wrap_filter(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        lead = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

        @functools.wraps(func)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self.tick()
            if len(args) > lead:
                args = args[:lead] + (_check_filter(self, name, args[lead], args[lead + 1:], kwargs),) + args[lead + 1:]
            return self.made(func(*args, **kwargs))

        return wrapped


# -- what one operation may cost ------------------------------------------------------------------
def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_binop(env: SandboxEnvironment, operator: str, left: Any, right: Any) -> None:
    if operator == "**":
        base, exponent = _int(left), _int(right)
        if base is not None and exponent is not None and exponent > 0 and abs(base) > 1:
            if exponent * math.log2(abs(base)) > MAX_TEMPLATE_INT_BITS:
                raise Refusal(f"{base} ** {exponent} has more than {MAX_TEMPLATE_INT_BITS} bits")
    elif operator == "*":
        a, b = _int(left), _int(right)
        if a is not None and b is not None:
            if a.bit_length() + b.bit_length() > MAX_TEMPLATE_INT_BITS + 1:
                raise Refusal(f"a product of more than {MAX_TEMPLATE_INT_BITS} bits")
        else:  # at most one side is an integer: a repeated sequence, when the other is one
            for times, other in ((a, right), (b, left)):
                if times is not None and isinstance(other, (str, bytes, list, tuple)):
                    env.fits(max(times, 0) * max(_text_size(other, MAX_RENDERED_CHARS + 1), 1), "'*'")
    elif operator == "+":
        if isinstance(left, (str, bytes, list, tuple)) and isinstance(right, (str, bytes, list, tuple)):
            env.fits(_text_size(left, MAX_RENDERED_CHARS + 1) + _text_size(right, MAX_RENDERED_CHARS + 1), "'+'")
    elif operator == "%" and isinstance(left, str):
        _check_format(env, left, right if isinstance(right, tuple) else (right,), {})


_WIDTH = re.compile(r"\d+")


def _check_format(env: SandboxEnvironment, fmt: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """printf- and str.format-style formatting: no huge width, no huge value."""
    widths = [int(w) for w in _WIDTH.findall(fmt) if len(w) <= 12]
    if any(len(w) > 12 for w in _WIDTH.findall(fmt)) or any(w > MAX_RENDERED_CHARS for w in widths):
        raise Refusal(f"a format width over {MAX_RENDERED_CHARS}")
    values = list(args.values() if isinstance(args, dict) else args) + list(kwargs.values())
    if any((_int(v) or 0) > MAX_RENDERED_CHARS for v in values if "*" in fmt or "{" in fmt):
        raise Refusal(f"a format width over {MAX_RENDERED_CHARS}")
    env.fits(len(fmt) + sum(_text_size(v, MAX_RENDERED_CHARS + 1) for v in values) + sum(widths), "formatting")


def _check_replace(env: SandboxEnvironment, text: str, old: Any, new: Any) -> None:
    if isinstance(old, str) and isinstance(new, str) and len(new) > len(old):
        hits = text.count(old) if old else len(text) + 1
        env.fits(len(text) + hits * (len(new) - len(old)), "replace")


def _bounded_items(env: SandboxEnvironment, value: Iterable[Any], separator: str, what: str) -> list[Any]:
    """The items of what `join` joins, refusing once their text would be too long."""
    items, total = [], 0
    for item in value:
        env.tick()
        total += _text_size(item, MAX_RENDERED_CHARS + 1) + len(separator)
        env.fits(total, what)
        items.append(item)
    return items


def _check_filter(env: SandboxEnvironment, name: str, value: Any, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> Any:
    """Refuse a filter call that would cost too much; returns the value (materialised for join)."""
    if name in _TEXT_FILTERS:
        env.fits(_text_size(value, MAX_RENDERED_CHARS + 1), f"'{name}'")
    params = list(args) + list(kwargs.values())
    text = str(value) if name in ("center", "indent", "replace", "format") else ""
    if name == "center":
        env.fits(max([_int(p) or 0 for p in params] + [0]), "'center'")
    elif name == "indent":
        width = params[0] if params else 4
        per_line = len(width) if isinstance(width, str) else (_int(width) or 0)
        env.fits(len(text) + (text.count("\n") + 1) * per_line, "'indent'")
    elif name == "replace" and len(args) >= 2:
        _check_replace(env, text, args[0], args[1])
    elif name == "format":
        _check_format(env, text, args, kwargs)
    elif name in ("batch", "slice") and params:
        if (_int(params[0]) or 0) > MAX_RANGE:
            raise Refusal(f"'{name}' into more than {MAX_RANGE} parts")
    elif name == "sum":
        start = kwargs.get("start", args[1] if len(args) > 1 else 0)
        if not isinstance(start, (int, float)):
            raise Refusal("'sum' adds numbers only")
    elif name == "join":
        separator = str(kwargs.get("d", args[0] if args else ""))
        return _bounded_items(env, value, separator, "'join'")
    return value


_SIZED_METHODS = frozenset(("center", "ljust", "rjust", "zfill", "expandtabs"))


def _check_method(env: SandboxEnvironment, obj: Any, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """str and bytes methods whose result can be far larger than their receiver; returns the
    arguments to call with (what join() joins, materialised)."""
    wrapped = getattr(obj, "__wrapped__", obj)  # the sandbox's str.format wrapper
    owner = getattr(wrapped, "__self__", None)
    name = getattr(wrapped, "__name__", "")
    if not isinstance(owner, (str, bytes)):
        return args
    if name in _SIZED_METHODS:
        width = _int(args[0] if args else next(iter(kwargs.values()), 0)) or 0
        factor = max(len(owner), 1) if name == "expandtabs" else 1
        env.fits(width * factor, f"{name}()")
    elif name == "replace" and len(args) >= 2:
        _check_replace(env, owner if isinstance(owner, str) else "", args[0], args[1])
    elif name == "join" and args:
        return (_bounded_items(env, args[0], str(owner), "join()"),) + args[1:]
    elif name in ("format", "format_map") and isinstance(owner, str):
        _check_format(env, owner, args[0] if name == "format_map" and args else args, kwargs)
    return args
