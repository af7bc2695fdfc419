"""The sshd event catalogue: load it from YAML, compile it, and match a message to an entry.

The catalogue is data (``simulator/data/events/*.yaml``): one entry per message form sshd writes,
with the event name, its level, a pattern, the OpenSSH versions that emit it and its source.
Hand-written entries live in ``events/<topic>.yaml``; the long tail, extracted from
openssh-portable's log calls, in ``events/source/<topic>.yaml``.

Pattern syntax (``pattern:``) is a template: literal text with ``{name}`` or ``{name:type}``
fields, ``{{`` and ``}}`` for literal braces. Types:

=========  ===========================  =====================================
type       matches                      printf conversion it stands for
=========  ===========================  =====================================
(none)     any text, shortest first     ``%s``
``int``    ``-?[0-9]+``                 ``%d %ld %lld``
``uint``   ``[0-9]+``                   ``%u %lu %zu %llu``
``hex``    ``[0-9a-fA-F]+``             ``%x``
``float``  ``-?[0-9]+(.[0-9]+)?``       ``%f %g``
``word``   one run of non-blanks        (an address, a key type, a path)
``char``   one character                ``%c``
``rest``   everything to the end        (greedy, for a trailing free text)
=========  ===========================  =====================================

A field whose name starts with ``_`` is matched but not kept. An entry may give ``regex:`` (a
Python regex with ``(?P<name>...)`` groups) instead of ``pattern:`` when a template cannot say it.
A whole message must match (``fullmatch``). ``fallback: true`` puts an entry after every other
candidate (catch-alls such as ``Disconnecting: {reason}``).

``tags:`` says what the message means for grouping and outcomes, in the fixed vocabulary of
`simulator.logs.tags` (documented in the catalogue's README); they are checked here, when the
catalogue loads.

Matching must be cheap (the parser aims at 500k lines/s), so entries are not tried one by one:
each is filed under a key made of its first literal words (digits and ``-`` removed, so that
``channel {id:int}:`` and ``channel 0:`` share a key), every key's candidates are joined into
one alternation regex compiled on first use, and a message only runs the regex of the most
specific key its first words give. Results are cached per message text, since most sshd lines
recur word for word.
"""

from __future__ import annotations

import gc
import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from itertools import repeat
from pathlib import Path
from typing import Any, Literal

from simulator.loglevels import MESSAGE_LEVELS
from simulator.logs import catalogue_cache
from simulator.logs.tags import NAMES_ADDR, NAMES_PID, TAGS, parse_tags

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "events"

# An entry's level; VARIES: the level is chosen at run time (do_log2 with a variable level).
LEVELS = MESSAGE_LEVELS + ("VARIES",)

_FIELD_REGEX = {
    "": r".*?",
    "int": r"-?\d+",
    "uint": r"\d+",
    "hex": r"[0-9a-fA-F]+",
    "float": r"-?\d+(?:\.\d+)?",
    "word": r"\S+",
    "char": r".",
    "rest": r".*",
}
# Field types that match only digits and '-': the dispatch key drops them like message digits.
_KEY_TRANSPARENT = frozenset(("int", "uint"))
_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_]\w*)(?::(\w+))?\}")
_NAMED_GROUP = re.compile(r"\(\?P<([A-Za-z_]\w*)>")
# Characters deleted from both the message head and a template's literal text to form keys.
_KEY_DELETE = str.maketrans("", "", "0123456789-")
# A message's shape is its UTF-8 bytes with every ASCII digit made "0": bytes.translate does it
# in one C loop (str.translate is several times slower), and since no multi-byte UTF-8 sequence
# holds an ASCII byte, two messages share a shape exactly when they differ only in the values
# of their digits, not in where digits are or how many. (Deleting the digits instead made
# "port " and "port 57314" one shape: an entry that needs the number fails on the first and a
# looser one matches it, and cached for the shape, that looser entry then took every real line.)
SHAPE_ZEROS = bytes.maketrans(b"0123456789", b"0000000000")
# An entry's regex read a piece at a time (see `digits_generalised`): an escape, a counted
# repetition, a group's name, a character class, a digit, anything else.
_REGEX_PIECE = re.compile(r"\\.|\{\d+(?:,\d*)?\}|\(\?P[<=]\w+>?|\[(?:\\.|[^\]])*\]|[0-9]|.", re.DOTALL)


def digits_generalised(regex: str) -> str | None:
    """`regex` with each literal digit ("ssh2", "status 0") made any digit: a regex that treats
    all digits alike, and matches whatever `regex` matches. None if `regex` has a back
    reference or a negated character class naming some digits ([^1-9]), not made so here."""
    out = []
    for piece in _REGEX_PIECE.findall(regex):
        if piece.isdigit():
            out.append(r"\d")
        elif piece[0] == "\\" and piece[1:].isdigit():
            return None  # a back reference (\1) compares digits
        elif piece[0] == "[" and any(c.isdigit() for c in piece.replace("0-9", "")):
            # a class naming some digits: ssh[12] -> ssh[0-912] (with all of 0-9, as [0-9a-f],
            # it treats them alike already); negated, [^1], it is left to the caller
            if piece[1] == "^":
                return None
            out.append("[0-9" + piece[1:])
        else:
            out.append(piece)
    return "".join(out)


_KEY_WORDS = 3
# sshd formats every message, level prefix and relay suffix included, into a 1,024-byte buffer
# (log.c, MSGBUFSIZ), so it never writes a longer one. A longer message (a line of something
# else, or one damaged on its way) is not matched: it is unknown, its text kept. The margin is
# for what a syslog daemon may add (escapes of control characters); the bound also keeps the
# cost of matching a hostile line small.
MAX_MESSAGE = 1100
_REGEX_META = frozenset(".^$*+?{}[]\\|()")
_INT_TYPES = frozenset(("int", "uint"))


class CatalogueError(ValueError):
    """An entry of the catalogue is malformed; names the file and the entry."""


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One catalogue entry: a message form sshd writes, compiled."""

    name: str
    level: str
    pattern: str
    regex: str
    fields: tuple[str | None, ...]  # one per capture group; None for an unkept group
    int_fields: frozenset[str]
    versions: str
    source: str
    origin: str  # file the entry came from, relative to the data directory
    fallback: bool = False
    key: str = ""
    named: tuple[tuple[int, str], ...] = ()  # (group index, field name) for kept fields
    tags: tuple[str, ...] = ()  # what the message means (simulator/logs/tags.py)
    flags: int = 0  # the tags as bits
    # the regex as compiled when the entry was loaded (checking it compiles): kept, since
    # matching a message by its shape uses it, and compiling it again costs more than the match
    own: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def compiled(self) -> re.Pattern[str]:
        """The entry's own regex (tests and tools; matching goes through the bucket regex)."""
        return self.own if self.own is not None else re.compile(self.regex, re.DOTALL)


def template_to_regex(template: str) -> tuple[str, list[tuple[str, str]]]:
    """Compile a template into a regex with named groups; also return [(field, type)].

    Adjacent untyped fields (``{func}{quiet}{path}``, from printf's ``%s%s%s``) cannot be told
    apart, and lazy matching gives the earlier ones the empty string whenever the message
    matches. Compiled as written, a message that does not match makes the engine try every
    split between them (cubic in the message length for three: seconds for a 1,000-byte
    line). So a field followed directly by another untyped or rest-of-line field matches
    the empty string only: the same groups when the message matches, linear when it does not.
    """
    out: list[str] = []
    fields: list[tuple[str, str]] = []
    seen: set[str] = set()
    pos = 0
    lazy_at: int | None = None  # index in `out` of an untyped field with no text after it yet
    for m in _TEMPLATE_TOKEN.finditer(template):
        literal = re.escape(template[pos : m.start()])
        if literal:
            out.append(literal)
            lazy_at = None
        pos = m.end()
        tok = m.group(0)
        if tok in ("{{", "}}"):
            out.append(r"\{" if tok == "{{" else r"\}")
            lazy_at = None
            continue
        name, typ = m.group(1), m.group(2) or ""
        if typ not in _FIELD_REGEX:
            raise CatalogueError(f"unknown field type {typ!r} in {template!r}")
        if lazy_at is not None and typ in ("", "rest"):
            out[lazy_at] = out[lazy_at].replace(_FIELD_REGEX[""] + ")", ")")
        sub = _FIELD_REGEX[typ]
        if name.startswith("_") or name in seen:
            out.append(f"(?:{sub})")
        else:
            seen.add(name)
            fields.append((name, typ))
            out.append(f"(?P<{name}>{sub})")
        lazy_at = len(out) - 1 if typ == "" else None
    out.append(re.escape(template[pos:]))
    return "".join(out), fields


def template_key(template: str) -> str:
    """The dispatch key of a template: its first complete literal words (see module doc)."""
    text: list[str] = []
    pos = 0
    open_end = False
    for m in _TEMPLATE_TOKEN.finditer(template):
        text.append(template[pos : m.start()])
        pos = m.end()
        tok = m.group(0)
        if tok in ("{{", "}}"):
            text.append(tok[0])
            continue
        if (m.group(2) or "") in _KEY_TRANSPARENT:
            continue
        open_end = True
        break
    else:
        text.append(template[pos:])
    return _key_from_literal("".join(text), open_end)


def regex_key(regex: str) -> str:
    """The dispatch key of a raw regex entry: from its literal prefix only (conservative)."""
    lit: list[str] = []
    i = 0
    n = len(regex)
    while i < n:
        c = regex[i]
        if c == "\\" and i + 1 < n and not regex[i + 1].isalnum():
            ch, step = regex[i + 1], 2
        elif c not in _REGEX_META:
            ch, step = c, 1
        else:
            break
        if i + step < n and regex[i + step] in "?*+{":
            break
        lit.append(ch)
        i += step
    return _key_from_literal("".join(lit), i < n)


def _key_from_literal(text: str, open_end: bool) -> str:
    words = text.translate(_KEY_DELETE).split(" ")
    if open_end:
        words = words[:-1]  # the last word runs into a field: not complete
    return " ".join(words[:_KEY_WORDS])


def message_keys(message: str) -> tuple[str, ...]:
    """The keys to look up for a message, most specific first."""
    words = message[:160].translate(_KEY_DELETE).split(" ", _KEY_WORDS)[:_KEY_WORDS]
    keys = [" ".join(words[:i]) for i in range(len(words), 0, -1)]
    return tuple(keys)


@dataclass(slots=True)
class _Alternation:
    """A run of candidates, compiled on first use into one alternation."""

    specs: list[EventSpec]
    regex: re.Pattern[str] | None = None
    # outer group index -> (spec, index of the spec's first group)
    groups: dict[int, tuple[EventSpec, int]] = field(default_factory=dict)

    def search(self, message: str) -> MatchResult | None:
        """The first candidate whose pattern matches the whole message."""
        if not self.specs:
            return None
        regex = self.regex or self.compile()
        m = regex.fullmatch(message)
        if m is None:
            return None
        spec, first = self.groups[m.lastindex]  # type: ignore[index]
        return spec, m.groups()[first - 1 : first - 1 + len(spec.fields)]

    def compile(self) -> re.Pattern[str]:
        parts: list[str] = []
        index = 1
        for spec in self.specs:
            plain = _NAMED_GROUP.sub("(", spec.regex)
            parts.append(f"({plain})")
            self.groups[index] = (spec, index + 1)
            index += 1 + len(spec.fields)
        self.regex = re.compile("|".join(parts), re.DOTALL)
        return self.regex


@dataclass(slots=True)
class _Bucket:
    """The candidates filed under one key, tried in order.

    They are matched as consecutive runs, each one alternation (an alternation under
    ``fullmatch`` takes its first candidate that matches, so trying the runs in order gives the
    same answer as one alternation of all). The run of key-less hand-written entries, which
    every bucket holds, is one alternation shared by all buckets: compiled once, not once per
    bucket.
    """

    specs: list[EventSpec]
    runs: list[_Alternation] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.runs and self.specs:
            self.runs = [_Alternation(list(self.specs))]

    def search(self, message: str) -> MatchResult | None:
        """The first candidate whose pattern matches the whole message."""
        for run in self.runs:
            hit = run.search(message)
            if hit is not None:
                return hit
        return None

    @classmethod
    def of(cls, specs: list[EventSpec], shared: _Alternation | None) -> _Bucket:
        """A bucket of `specs`; the contiguous run equal to ``shared.specs`` uses it."""
        if shared is not None and shared.specs:
            k = len(shared.specs)
            for i, spec in enumerate(specs):
                if spec is shared.specs[0]:
                    if specs[i : i + k] == shared.specs:
                        runs = [_Alternation(specs[:i]), shared, _Alternation(specs[i + k :])]
                        return cls(list(specs), [r for r in runs if r.specs])
                    break
        return cls(list(specs), [_Alternation(list(specs))])


MatchResult = tuple[EventSpec, tuple[str | None, ...]]


class Catalogue:
    """All entries, filed by dispatch key, with a cache of message -> match result."""

    def __init__(self, specs: Iterable[EventSpec], cache_size: int = 16384) -> None:
        self.specs: list[EventSpec] = list(specs)
        self._cache: dict[str, MatchResult | None] = {}
        self.cache = self._cache  # read-only view for the parser's hot loop
        self._shapes: dict[bytes, EventSpec] = {}  # message's shape -> entry (see shape_safe)
        # id(entry) -> its regex with literal digits generalised, None if it has none, False if
        # they cannot be generalised (see shape_safe)
        self._generalised: dict[int, re.Pattern[str] | Literal[False] | None] = {}
        # an entry's regex, compiled: as loaded, else on first use
        self._own: dict[str, re.Pattern[str]] = {s.regex: s.own for s in self.specs if s.own is not None}
        self._cache_size = cache_size
        self.max_message = MAX_MESSAGE
        self._buckets: dict[str, _Bucket] = {}
        self._build()

    def _build(self) -> None:
        ordered = [s for s in self.specs if not s.fallback] + [s for s in self.specs if s.fallback]

        def tier(spec: EventSpec) -> int:
            return 2 if spec.fallback else (1 if spec.origin.startswith("source/") else 0)

        by_key: dict[str, list[EventSpec]] = {}
        for spec in ordered:
            by_key.setdefault(spec.key, []).append(spec)
        # A bucket holds its own entries and those of every shorter key that prefixes it, so
        # that a message needs only the bucket of its most specific key. Order: hand-written
        # entries (with hand-written key-less ones, which are few and precise), then extracted
        # ones with the longest key first (a specific form before a generic one), then
        # fallbacks. The key-less extracted entries (a few hundred "%s: ..." forms) are kept
        # out of the keyed buckets and tried only when the keyed bucket finds nothing: copied
        # into every bucket they would make each one slow to compile. Buckets are made when a
        # message first needs them (a log uses a few hundred of some thousands of keys).
        self._rank = {
            id(s): (tier(s), -len(s.key.split(" ")) if s.key else 0, i)
            for i, s in enumerate(ordered)
        }
        self._by_key = by_key
        self._keyless_curated = [s for s in by_key.get("", ()) if tier(s) == 0]
        self._shared = None
        if self._keyless_curated:
            self._shared = _Alternation(sorted(self._keyless_curated, key=lambda s: self._rank[id(s)]))
        wild = sorted(by_key.get("", ()), key=lambda s: self._rank[id(s)])
        self._buckets[""] = _Bucket.of(wild, self._shared)

    def _bucket(self, key: str) -> _Bucket | None:
        """The bucket of a key some entry has (made on first use), else None."""
        bucket = self._buckets.get(key)
        if bucket is None and key in self._by_key:
            words = key.split(" ")
            cands: list[EventSpec] = list(self._keyless_curated)
            for i in range(len(words), 0, -1):
                cands.extend(self._by_key.get(" ".join(words[:i]), ()))
            rank = self._rank
            cands.sort(key=lambda s: rank[id(s)])
            bucket = self._buckets[key] = _Bucket.of(cands, self._shared)
        return bucket

    def match(self, message: str, remember: bool = True) -> MatchResult | None:
        """The entry a message (level prefix and relay suffix removed) matches, or None.

        Two caches: the exact text (most lines recur word for word), then the message's shape,
        its text with every digit made 0 (a line that differs only in the values of pids,
        ports, addresses or counters is the same form), which names the entry whose own regex
        then gives the fields; a shape is kept only where `shape_safe` says so.
        ``remember=False`` leaves the answer out of the exact-text cache: the parser keeps its
        own cache of whole lines, and a second copy of every one-off message (a client port
        in it) would only feed the garbage collector.
        """
        if len(message) > MAX_MESSAGE:
            return None
        cache = self._cache
        hit = cache.get(message, cache)
        if hit is not cache:
            return hit  # type: ignore[return-value]
        result = None
        shape = message.encode("utf-8", "surrogatepass").translate(SHAPE_ZEROS)
        spec = self._shapes.get(shape)
        if spec is not None:
            own = self._own.get(spec.regex)
            if own is None:
                own = self._own[spec.regex] = re.compile(spec.regex, re.DOTALL)
            m = own.fullmatch(message)
            if m is not None:
                result = (spec, m.groups())
        if result is None:
            result = self._match(message)
            if result is not None and self.shape_safe(message, result[0]):
                if len(self._shapes) >= self._cache_size:
                    self._shapes.clear()
                self._shapes[shape] = result[0]
        if remember:
            if len(cache) >= self._cache_size:
                cache.clear()  # same dict object: the parser holds a reference
            cache[message] = result
        return result

    def shape_safe(self, message: str, spec: EventSpec) -> bool:
        """Whether `spec`, the entry `message` matched, may stand for its whole shape: whether
        every message of that shape which `spec` matches would be matched by `spec` first too.
        Such messages differ from this one only in the values of their digits. An entry tried
        before `spec` failed on this one; if its regex treats all digits alike it fails on all
        of them. One with a literal digit ("ssh2" against "ssh1") could take one of them only if
        its regex with that digit made any digit matches this message: then the shape is not
        kept. Asked once per shape learnt, so that a log's lines cannot teach a shape an answer
        that a later line of the same shape would not get from the catalogue itself."""
        wild = self._buckets[""]
        bucket = self._bucket_for(message)
        # the entries `_match` tries before `spec`, in order
        at = next((i for i, s in enumerate(bucket.specs) if s is spec), None)
        if at is not None:
            before = bucket.specs[:at]
        elif bucket is wild:
            return False  # (not an answer `_match` gives: keep nothing)
        else:
            before = bucket.specs + wild.specs[: next((i for i, s in enumerate(wild.specs) if s is spec),
                                                      len(wild.specs))]
        known = self._generalised
        for s in before:
            if id(s) in known:
                general = known[id(s)]
            else:
                text = digits_generalised(s.regex)
                general = known[id(s)] = (False if text is None else
                                          None if text == s.regex else re.compile(text, re.DOTALL))
            if general is False or (general is not None and general.fullmatch(message) is not None):
                return False
        return True

    def regex_of(self, spec: EventSpec) -> re.Pattern[str]:
        """An entry's own regex, compiled once."""
        own = self._own.get(spec.regex)
        if own is None:
            own = self._own[spec.regex] = re.compile(spec.regex, re.DOTALL)
        return own

    def _bucket_for(self, message: str) -> _Bucket:
        """The bucket of entries a message is tried against first: that of its first key the
        catalogue knows, else the wildcard bucket (which `_match` tries after any other)."""
        for key in message_keys(message):
            found = self._bucket(key)
            if found is not None:
                return found
        return self._buckets[""]

    def _match(self, message: str) -> MatchResult | None:
        wild = self._buckets[""]
        bucket = self._bucket_for(message)
        hit = bucket.search(message)
        if hit is None and bucket is not wild:
            hit = wild.search(message)
        return hit

    def names(self) -> set[str]:
        """Every event name in the catalogue."""
        return {s.name for s in self.specs}

    def bucket_sizes(self) -> dict[str, int]:
        """Candidates per key (for tests and tuning: a key should stay short)."""
        return {k: len(b.specs) for k in self._by_key if (b := self._bucket(k)) is not None}


def _spec_from_entry(entry: dict, origin: str, index: int) -> EventSpec:
    where = f"{origin} entry {index + 1}"
    if not isinstance(entry, dict):
        raise CatalogueError(f"{where}: not a mapping")
    try:
        name = str(entry["event"])
        level = str(entry["level"])
        versions = str(entry["versions"])
        source = str(entry["source"])
    except KeyError as exc:
        raise CatalogueError(f"{where}: missing {exc.args[0]!r}") from None
    if level not in LEVELS:
        raise CatalogueError(f"{where}: unknown level {level!r}")
    if "pattern" in entry:
        pattern = str(entry["pattern"])
        regex, typed = template_to_regex(pattern)
        key = template_key(pattern)
        int_fields = frozenset(n for n, t in typed if t in _INT_TYPES)
    elif "regex" in entry:
        pattern = regex = str(entry["regex"])
        key = regex_key(regex)
        int_fields = frozenset(str(n) for n in entry.get("int_fields", ()))
    else:
        raise CatalogueError(f"{where}: needs 'pattern' or 'regex'")
    try:
        compiled = re.compile(regex, re.DOTALL)
    except re.error as exc:
        raise CatalogueError(f"{where}: bad pattern {pattern!r}: {exc}") from None
    names: list[str | None] = [None] * compiled.groups
    for gname, gi in compiled.groupindex.items():
        names[gi - 1] = gname
    try:
        tags, flags = parse_tags(entry.get("tags"))
    except ValueError as exc:
        raise CatalogueError(f"{where}: {exc}") from None
    _check_tag_fields(where, tags, flags, set(compiled.groupindex), int_fields)
    return EventSpec(
        name=name,
        level=level,
        pattern=pattern,
        regex=regex,
        fields=tuple(names),
        int_fields=int_fields,
        versions=versions,
        source=source,
        origin=origin,
        fallback=bool(entry.get("fallback", False)),
        key=key,
        named=tuple((i, n) for i, n in enumerate(names) if n is not None),
        tags=tags,
        flags=flags,
        own=compiled,
    )


def _check_tag_fields(where: str, tags: tuple[str, ...], flags: int, fields: set[str],
                      int_fields: frozenset[str]) -> None:
    """A tag that says the line names a pid or the client needs the field that holds it."""
    if flags & NAMES_PID and "pid" not in int_fields:
        which = [t for t in tags if TAGS[t] & NAMES_PID]
        raise CatalogueError(f"{where}: tag {which[0]!r} needs an integer field 'pid'")
    if flags & NAMES_ADDR and "addr" not in fields:
        which = [t for t in tags if TAGS[t] & NAMES_ADDR]
        raise CatalogueError(f"{where}: tag {which[0]!r} needs a field 'addr'")


def load_specs(data_dir: Path = DATA_DIR, cache: Path | None = None) -> list[EventSpec]:
    """Read every catalogue file: hand-written topics first, then the extracted long tail.

    With ``cache`` (a folder), the compiled entries are taken from there when they were made
    from the same files, and put there otherwise (see catalogue_cache).
    """
    files = sorted(data_dir.glob("*.yaml")) + sorted((data_dir / "source").glob("*.yaml"))
    key = catalogue_cache.data_key(files, data_dir) if cache is not None else ""
    if cache is not None:
        columns = catalogue_cache.load(cache, key)
        if columns is not None:
            try:
                return _specs_from_columns(columns)
            except (CatalogueError, ValueError):
                pass  # a row the code no longer accepts: read the YAML
    import yaml  # local for start-up cost only: a process with the cache never needs it

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    specs: list[EventSpec] = []
    for path in files:
        origin = str(path.relative_to(data_dir))
        with path.open(encoding="utf-8") as fh:
            entries = yaml.load(fh, Loader=loader) or []
        if not isinstance(entries, list):
            raise CatalogueError(f"{origin}: expected a list of entries")
        specs.extend(_spec_from_entry(e, origin, i) for i, e in enumerate(entries))
    if cache is not None:
        catalogue_cache.save(cache, key, [_row_of(s) for s in specs])
    return specs


def _row_of(spec: EventSpec) -> tuple:
    """An entry as plain data (catalogue_cache's row)."""
    return (spec.name, spec.level, spec.pattern, spec.regex, list(spec.fields), sorted(spec.int_fields),
            spec.versions, spec.source, spec.origin, spec.fallback, spec.key, list(spec.tags))


def _specs_from_columns(columns: list[tuple[Any, ...]]) -> list[EventSpec]:
    """The entries of the cached columns (catalogue_cache.load); their regexes are compiled
    when first needed.

    Part of every warm start-up, so it works a column at a time in C-level maps: the pieces
    that recur across entries (tag lists, field lists) are made once per distinct value, and
    the entries are made by `_new_specs`."""
    (names, levels, patterns, regexes, field_lists, int_lists, versions, sources, origins, fallbacks, keys,
     tag_lists) = columns
    if not set(levels) <= _LEVEL_SET:
        i = next(i for i, level in enumerate(levels) if level not in _LEVEL_SET)
        raise CatalogueError(f"{origins[i]}: unknown level {levels[i]!r}")
    # equal field lists share one tuple (the first of them), and its kept groups
    field_memo: dict[tuple[str | None, ...], tuple[str | None, ...]] = {}
    field_keys = list(map(tuple, field_lists))
    fields = list(map(field_memo.setdefault, field_keys, field_keys))
    named_of = {f: tuple((i, n) for i, n in enumerate(f) if n is not None) for f in field_memo}
    int_keys = list(map(tuple, int_lists))
    int_of = {k: frozenset(k) for k in set(int_keys)}
    tag_keys = list(map(tuple, tag_lists))
    tags_of = {k: parse_tags(list(k)) for k in set(tag_keys)}
    tag_pairs = list(map(tags_of.__getitem__, tag_keys))
    n = len(names)
    return _new_specs(n, {
        "name": names, "level": levels, "pattern": patterns, "regex": regexes, "fields": fields,
        "int_fields": list(map(int_of.__getitem__, int_keys)), "versions": versions, "source": sources,
        "origin": origins, "fallback": fallbacks, "key": keys, "named": list(map(named_of.__getitem__, fields)),
        "tags": [t for t, _ in tag_pairs], "flags": [f for _, f in tag_pairs], "own": [None] * n,
    })


_LEVEL_SET = frozenset(LEVELS)
_SPEC_SLOTS = {f.name: EventSpec.__dict__[f.name] for f in dataclass_fields(EventSpec)}


def _new_specs(n: int, values: dict[str, Sequence[Any]]) -> list[EventSpec]:
    """`n` entries, each field's values given as one sequence (every field, `n` values each).

    Equal to the entries EventSpec(...) makes (it has no __post_init__), in half the time: its
    frozen __init__ sets the 15 fields one object.__setattr__ call at a time, about 10 ms for
    the 4,500 entries of a warm start-up (measured 2026-12-05). Here each field is set on all
    entries by one C-level map over its slot's descriptor, which is what that call ends in."""
    if values.keys() != _SPEC_SLOTS.keys() or any(len(column) != n for column in values.values()):
        # TypeError, not ValueError: a caller's bug, not a cache to be read again from the YAML
        raise TypeError("_new_specs: needs every field of EventSpec, n values each")
    specs: list[EventSpec] = list(map(object.__new__, repeat(EventSpec, n)))
    for name, column in values.items():
        deque(map(_SPEC_SLOTS[name].__set__, specs, column), maxlen=0)
    return specs


_DEFAULT: Catalogue | None = None


def default_catalogue() -> Catalogue:
    """The packaged catalogue, loaded once per process."""
    global _DEFAULT
    if _DEFAULT is None:
        # The cycle collector is held off while the catalogue loads: a warm load makes some
        # 40,000 containers, none of them cyclic garbage, and they set off about sixty young
        # collections that find nothing (5 ms of a 35 ms load, measured 2026-12-05). A cold load
        # (reading the YAML) leaves a few hundred objects of cyclic garbage, kept for good by
        # the freeze below.
        collecting = gc.isenabled()
        gc.disable()
        try:
            _DEFAULT = Catalogue(load_specs(cache=catalogue_cache.cache_dir()))
        finally:
            if collecting:
                gc.enable()
        # The catalogue (tens of thousands of objects) lives as long as the process: move it,
        # with everything else made so far, out of the cycle collector's way. Each full
        # collection during a long parse would otherwise walk all of it again.
        gc.freeze()
    return _DEFAULT
