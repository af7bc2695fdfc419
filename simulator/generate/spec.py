"""Generate specs: what traffic `sshsim generate` produces, read and checked before anything runs.

A spec is YAML rendered with jinja2, like scenario files, and checked against
simulator/data/generate/spec.schema.json and then for meaning (files exist, profiles and pools
are known, CIDRs parse, ranges are ordered). Every problem is a one-line `BadInputError` naming
the spec file, the line and the key, so a typo costs no sshd run.
"""

from __future__ import annotations

import datetime as dt
import difflib
import ipaddress
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema
import yaml

from simulator.errors import BadInputError
from simulator.limits import (
    GENERATE_YEARS,
    MAX_BURST_CONCURRENT,
    MAX_GENERATE_BURSTS,
    MAX_GENERATE_CONNECTIONS,
    MAX_GENERATE_LINES,
    MAX_GENERATE_SECONDS,
    MAX_GENERATE_WEIGHT,
    MAX_MATRIX_CELLS,
    MAX_POOL_HOSTS,
    MAX_REAL_ENGINE_CONNECTIONS,
    QUOTE_CHARS,
)
from simulator.profiles import known_profiles
from simulator.scenario.loader import file_defaults, read_text, render
from simulator.scenario.template import render_deadline
from simulator.shipped import shipped
from simulator.yamlread import load_yaml_with_positions

Position = tuple[str, int, int]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# User names that are real accounts on the recording server (and on most servers): recorded as
# they are, never replaced.
SYSTEM_USERS = frozenset(("root", "daemon", "bin", "nobody"))
USER_KINDS = ("valid", "invalid")
FORMATS = ("syslog", "rfc3339", "rfc5424", "journal-json", "jsonl")


@cache
def data(name: str) -> Any:
    """A file of simulator/data/generate/ (YAML or JSON)."""
    text = resources.files("simulator.data").joinpath(f"generate/{name}").read_text()
    return json.loads(text) if name.endswith(".json") else yaml.safe_load(text)


@dataclass(frozen=True)
class Pool:
    """Source addresses: `hosts` addresses drawn (with the seed) from the CIDRs."""

    name: str
    networks: tuple[IPNetwork, ...]
    hosts: int


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    weight: float = 1.0


@dataclass(frozen=True)
class Variant:
    """One recordable form of a mix entry: a client profile and scenario variables."""

    profile: str | None
    vars: tuple[tuple[str, Any], ...]

    @property
    def key(self) -> str:
        parts = ([f"profile={self.profile}"] if self.profile else []) + [f"{k}={v}" for k, v in self.vars]
        return ",".join(parts)


@dataclass
class Entry:
    """A weighted kind of connection: a scenario file (or a scanner probe), its variants, users."""

    name: str
    weight: float
    scenario: Path | None
    probe: str | None
    variants: list[Variant]
    user: str | tuple[str, ...]  # "valid" | "invalid" | literal names
    sources: str
    session: tuple[float, float] | None
    position: Position | None = None


@dataclass
class Burst:
    """Brute force: `count` bursts, each many connections from one address in quick succession."""

    name: str
    sources: str
    count: int
    connections: tuple[float, float]
    interval: tuple[float, float]
    mix: list[Entry]
    position: Position | None = None
    concurrent: int = 1  # unauthenticated connections the attacker keeps open at once (real engine)


@dataclass
class GenerateSpec:
    """A whole spec, checked and with every default filled in."""

    path: str
    name: str
    engine: str
    target: str
    seed: int
    host: str
    format: str
    log_level: str
    server_address: str
    server_port: int
    listener_pid: int | None
    pid_max: int
    sshd_config: list[str]
    start: dt.datetime  # aware
    duration: float  # seconds
    timezone: dt.tzinfo
    rate_per_s: float
    curve: tuple[float, ...]
    users: list[User]
    invalid_users: list[str]
    pools: dict[str, Pool]
    mix: list[Entry]
    bursts: list[Burst]
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    positions: dict[tuple, Position] = field(default_factory=dict, repr=False)
    volume_at: tuple = ()  # the key a volume error points at: what asks for the most connections
    # `generate --sshd-config`: a user's own sshd_config (simulator/target/userconfig.py UserConfig).
    sshd_config_file: Any = None
    # server.per_source_penalties: the PerSourcePenalties value ("yes": sshd's defaults), None: off
    per_source_penalties: str | None = None
    # server.max_startups: the recording sshd's MaxStartups (None: sshd's default where a burst
    # is concurrent, sshsim's own otherwise)
    max_startups: str | None = None

    def entries(self) -> list[Entry]:
        """Every entry, the mix's and the bursts'."""
        return list(self.mix) + [e for b in self.bursts for e in b.mix]


# -- reading ------------------------------------------------------------------------------------
def load_spec(path: str | Path, variables: dict[str, Any] | None = None) -> GenerateSpec:
    """Read, render, validate a spec file; raise a one-line BadInputError for any problem."""
    path = str(path)
    if not Path(path).is_file():
        raise BadInputError("spec file not found" if not Path(path).exists() else "is not a file", file=path)
    text = read_text(path)
    deadline = render_deadline()  # both readings share it
    defaults, _, _ = file_defaults(text, path, dict(variables or {}), deadline)
    rendered = render(text, path, {**defaults, **(variables or {})}, deadline=deadline)
    raw, positions = load_yaml_with_positions(rendered, path)
    if raw is None:
        raise BadInputError("empty spec file", file=path, line=1)
    if not isinstance(raw, dict):
        raise BadInputError(f"a spec is a mapping, not a {type(raw).__name__}", file=path, line=1)
    _check_numbers(raw, (), _Where(positions, path))
    _check_schema(raw, positions, path)
    return _build(raw, positions, path)


class _Where:
    """Turns a key path into a BadInputError at the right line."""

    def __init__(self, positions: dict[tuple, Position], path: str) -> None:
        self.positions = positions
        self.path = path

    def error(self, message: str, at: tuple) -> BadInputError:
        pos = self.positions.get(at)
        probe = at
        while pos is None and probe:
            probe = probe[:-1]
            pos = self.positions.get(probe)
        return BadInputError(message, file=self.path, line=pos[1] if pos else None,
                             column=pos[2] if pos else None, key=key_path(at))


def key_path(at: tuple) -> str:
    out = ""
    for part in at:
        if isinstance(part, tuple):  # ("key", name): the key itself
            part = part[1]
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + str(part))
    return out or "(top)"


def _check_numbers(value: Any, at: tuple, where: _Where) -> None:
    """Refuse .inf and .nan anywhere: the schema's bounds cannot (nan compares false with every
    bound, so `exclusiveMinimum: 0` lets it through), and no value of a spec means either."""
    if isinstance(value, float) and not math.isfinite(value):
        shown = ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
        raise where.error(f"{shown} is not a finite number", at)
    if isinstance(value, dict):
        for k, v in value.items():
            _check_numbers(v, at + (k,), where)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_numbers(v, at + (i,), where)


def _check_schema(raw: dict[str, Any], positions: dict[tuple, Position], path: str) -> None:
    validator = jsonschema.Draft202012Validator(data("spec.schema.json"))
    errors = sorted(validator.iter_errors(raw), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if not errors:
        return
    error = errors[0]
    while error.validator in ("oneOf", "anyOf") and error.context:
        # the branches the value has the type of say what is wrong with it ([-5, 3] is a list
        # with a number below the minimum, not "not a number")
        fitting = [e for e in error.context
                   if e.validator != "type" or len(e.absolute_path) > len(error.absolute_path)]
        best = jsonschema.exceptions.best_match(fitting) if fitting else None
        if best is None:
            break
        error = best
    at = tuple(error.absolute_path)
    where = _Where(positions, path)
    instance = error.instance
    shown = json.dumps(instance) if not isinstance(instance, (dict, list)) else type(instance).__name__
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(k for k in instance if k not in allowed)
        if extra:
            close = difflib.get_close_matches(extra[0], allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(allowed)})"
            raise where.error(f"unknown key {extra[0]!r}{hint}", at + (("key", extra[0]),))
    if error.validator == "enum":
        message = f"{shown} is not one of {', '.join(map(str, error.validator_value))}"
    elif error.validator == "type":
        message = f"expected {error.validator_value}, got {shown}"
    elif error.validator == "pattern":
        message = f"{shown} does not have the expected form"
    elif error.validator == "required":
        message = error.message.replace("is a required property", "is required")
    elif error.validator in ("oneOf", "anyOf"):
        message = f"{shown} is not a valid value here"
    elif error.validator in ("minItems", "maxItems") and isinstance(instance, list):
        bound = "at least" if error.validator == "minItems" else "at most"
        message = f"{len(instance):,} items, {bound} {error.validator_value} expected"
    else:
        message = error.message
    if len(message) > QUOTE_CHARS:  # jsonschema's own messages quote the value whole
        message = message[:QUOTE_CHARS] + "..."
    raise where.error(message, at)


# -- meaning ------------------------------------------------------------------------------------
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$")
_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Seconds from 90, "90s", "15m", "24h", "1d"."""
    if isinstance(value, (int, float)):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"not a duration: {value!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_timezone(name: str) -> dt.tzinfo:
    """UTC, Z, +HH:MM / -HHMM, or an IANA zone name."""
    text = name.strip()
    if text.upper() in ("UTC", "Z", "GMT"):
        return dt.UTC
    m = re.fullmatch(r"([+-])(\d\d):?(\d\d)", text)
    if m:
        delta = dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
        return dt.timezone(-delta if m.group(1) == "-" else delta)

    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use UTC, +HH:MM or an IANA name)") from None


def _range(value: Any, default: tuple[float, float]) -> tuple[float, float]:
    if value is None:
        return default
    if isinstance(value, (int, float)):
        return (float(value), float(value))
    return (float(value[0]), float(value[1]))


def _build(raw: dict[str, Any], positions: dict[tuple, Position], path: str) -> GenerateSpec:
    where = _Where(positions, path)
    defaults = data("defaults.yaml")
    folder = Path(path).resolve().parent

    # window and time zone
    window = raw.get("window", {})
    try:
        tz = parse_timezone(window.get("timezone", "UTC"))
    except ValueError as exc:
        raise where.error(str(exc), ("window", "timezone")) from None
    start_text = window.get("start", "2024-03-11T00:00:00")
    try:
        start = dt.datetime.fromisoformat(str(start_text).replace("Z", "+00:00"))
    except ValueError:
        raise where.error(f"not an ISO 8601 date and time: {start_text!r}", ("window", "start")) from None
    if start.tzinfo is None:
        start = start.replace(tzinfo=tz)
    if not GENERATE_YEARS[0] <= start.year <= GENERATE_YEARS[1]:
        raise where.error(f"the window starts in {start.year}: give a year from {GENERATE_YEARS[0]} to "
                          f"{GENERATE_YEARS[1]}", ("window", "start"))
    try:
        duration = parse_duration(window.get("duration", "24h"))
    except ValueError as exc:
        raise where.error(str(exc), ("window", "duration")) from None
    if duration <= 0:
        raise where.error("the window must be longer than 0 s", ("window", "duration"))
    _at_most(duration, MAX_GENERATE_SECONDS, "s", where, ("window", "duration"))

    # rate and curve
    rate = raw.get("rate", {})
    if "per_minute" in rate and "per_hour" in rate:
        raise where.error("give per_minute or per_hour, not both", ("rate",))
    per_s = rate["per_hour"] / 3600.0 if "per_hour" in rate else rate.get("per_minute", 2.0) / 60.0
    curve_spec = rate.get("curve", "daily")
    if isinstance(curve_spec, str):
        curves = defaults["curves"]
        if curve_spec not in curves:
            raise where.error(f"unknown curve {curve_spec!r} (known: {', '.join(sorted(curves))}, or 24 numbers)",
                              ("rate", "curve"))
        curve = tuple(float(x) for x in curves[curve_spec])
    else:
        curve = tuple(float(x) for x in curve_spec)
        for i, x in enumerate(curve):
            _at_most(x, MAX_GENERATE_WEIGHT, "", where, ("rate", "curve", i))
    if sum(curve) <= 0:
        raise where.error("the curve must not be all zeros", ("rate", "curve"))

    # users
    users: list[User] = []
    for i, item in enumerate(raw.get("users", [{"name": "user"}])):
        item = {"name": item} if isinstance(item, str) else item
        if item["name"] in SYSTEM_USERS or any(u.name == item["name"] for u in users):
            raise where.error(f"user {item['name']!r} is a system account or given twice", ("users", i))
        uid = item.get("uid", 1000 + len(users))
        if any(u.uid == uid for u in users):
            raise where.error(f"uid {uid} is used twice", ("users", i))
        weight = float(item.get("weight", 1.0))
        _at_most(weight, MAX_GENERATE_WEIGHT, "", where, ("users", i, "weight"))
        users.append(User(item["name"], uid, weight))
    valid_names = {u.name for u in users}
    invalid_users = [n for n in raw.get("invalid_users", defaults["invalid_users"]) if n not in valid_names]
    if not invalid_users:
        raise where.error("every invalid user name is also a valid user", ("invalid_users",))

    # pools
    pools: dict[str, Pool] = {}
    for name, item in defaults["sources"].items():
        pools[name] = _pool(name, item, defaults, where, ("sources",))
    for name, item in (raw.get("sources") or {}).items():
        pools[name] = _pool(name, item, defaults, where, ("sources", name))

    # server
    server = raw.get("server", {})
    address = str(server.get("address", defaults["server"]["address"]))
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise where.error(f"not an IP address: {address!r}", ("server", "address")) from None
    pid_max = int(server.get("pid_max", defaults["server"]["pid_max"]))
    listener_pid = server.get("listener_pid")
    if listener_pid is not None and listener_pid >= pid_max:
        raise where.error(f"listener_pid must be below pid_max ({pid_max})", ("server", "listener_pid"))

    penalties = server.get("per_source_penalties", False)
    if penalties is not False and raw.get("engine", "synthetic") != "real":
        raise where.error("per_source_penalties needs `engine: real` (penalties build up over a source's own "
                          "connections to one sshd; the synthetic engine's recordings are shared by every source: "
                          "docs/detection.md)", ("server", "per_source_penalties"))
    max_startups = server.get("max_startups")
    if max_startups is not None:
        max_startups = str(max_startups)
        parts = [int(p) for p in max_startups.split(":")]
        if len(parts) == 3 and not (parts[0] <= parts[2] and parts[1] <= 100):
            raise where.error(f"max_startups {max_startups!r}: start must be at most full and rate at most 100 "
                              "(start:rate:full, as sshd reads it)", ("server", "max_startups"))
        if raw.get("engine", "synthetic") != "real":
            raise where.error("max_startups needs `engine: real` (sshd drops a connection only while others "
                              "wait unauthenticated on the same sshd: docs/detection.md)", ("server", "max_startups"))
    level = raw.get("log_level", "INFO")
    spec = GenerateSpec(
        path=path,
        name=raw.get("name") or Path(path).stem,
        description=raw.get("description", ""),
        engine=raw.get("engine", "synthetic"),
        target=raw.get("target", "local"),
        seed=int(raw.get("seed", 0)),
        host=raw.get("host", "server"),
        format=raw.get("format", "syslog"),
        log_level="DEBUG1" if level == "DEBUG" else level,
        server_address=address,
        server_port=int(server.get("port", defaults["server"]["port"])),
        listener_pid=listener_pid,
        pid_max=pid_max,
        sshd_config=list(server.get("sshd_config", [])),
        per_source_penalties=None if penalties is False else ("yes" if penalties is True else str(penalties)),
        max_startups=max_startups,
        start=start,
        duration=duration,
        timezone=tz,
        rate_per_s=per_s,
        curve=curve,
        users=users,
        invalid_users=invalid_users,
        pools=pools,
        mix=[],
        bursts=[],
        raw=raw,
        positions=positions,
    )
    names: set[str] = set()
    for i, item in enumerate(raw.get("mix", [])):
        spec.mix.append(_entry(item, ("mix", i), spec, folder, where, names))
    for i, item in enumerate(raw.get("bursts", [])):
        at = ("bursts", i)
        pool = item.get("sources", "default")
        if pool not in pools:
            raise where.error(f"unknown source pool {pool!r} (known: {', '.join(sorted(pools))})", at + ("sources",))
        burst = Burst(
            name=item.get("name", f"burst{i + 1}"),
            sources=pool,
            count=int(item.get("count", 1)),
            connections=_ordered(_range(item.get("connections"), (20.0, 60.0)), where, at + ("connections",)),
            interval=_ordered(_range(item.get("interval"), (1.0, 6.0)), where, at + ("interval",)),
            mix=[_entry(e, at + ("mix", j), spec, folder, where, names, default_sources=pool)
                 for j, e in enumerate(item["mix"])],
            position=positions.get(at),
            concurrent=int(item.get("concurrent", 1)),
        )
        if burst.concurrent > MAX_BURST_CONCURRENT:
            raise where.error(f"concurrent {burst.concurrent}: at most {MAX_BURST_CONCURRENT}", at + ("concurrent",))
        if burst.concurrent > 1 and spec.engine != "real":
            raise where.error("concurrent needs `engine: real` (the connections must meet one sshd at once)",
                              at + ("concurrent",))
        if burst.connections[1] < 1:
            raise where.error("a burst needs at least one connection", at + ("connections",))
        _at_most(burst.interval[1], MAX_GENERATE_SECONDS, "s", where, at + ("interval",))
        spec.bursts.append(burst)
        bots = sum(b.count for b in spec.bursts)
        if bots > MAX_GENERATE_BURSTS:
            raise where.error(f"{bots:,} bursts in all (counts added up); one spec may have at most "
                              f"{MAX_GENERATE_BURSTS:,}", at + ("count",))
    if not spec.mix and not spec.bursts:
        raise where.error("nothing to generate: give `mix` or `bursts` entries", ())
    variants = sum(len(e.variants) for e in spec.entries())
    if variants > MAX_MATRIX_CELLS:
        raise where.error(f"{variants:,} variants in all (profiles × variable values, over every entry); one "
                          f"spec may have at most {MAX_MATRIX_CELLS:,}", ())
    spec.volume_at = _volume_at(spec, raw)
    check_volume(spec)
    return spec


# -- volume -------------------------------------------------------------------------------------
# What a spec may ask for is capped (simulator/limits.py) rather than streamed: the plan and
# the writer hold a few numbers per connection and per line, so memory follows the volume, and
# the cap keeps it bounded. Checked when the spec is read, from the rate, the window and the
# bursts, before anything is drawn; lines once the recordings say how many a connection has.
def expected_connections(spec: GenerateSpec) -> float:
    """Connections the plan has on average: the window's mean rate times its length, plus every
    burst at its largest."""
    normal = spec.rate_per_s * spec.duration if spec.mix else 0.0
    return normal + sum(b.count * math.floor(b.connections[1] + 0.5) for b in spec.bursts)


def check_volume(spec: GenerateSpec) -> None:
    """A one-line error at the spec's rate (or largest burst) if it asks for too much."""
    wanted = expected_connections(spec)
    real = spec.engine == "real"
    cap = MAX_REAL_ENGINE_CONNECTIONS if real else MAX_GENERATE_CONNECTIONS
    if wanted > cap:
        shown = f"{wanted:,.0f}" if wanted < 1e15 else f"{wanted:.3g}"
        how = (f"the real engine runs each against sshd and takes at most {cap:,} (the synthetic one "
               f"{MAX_GENERATE_CONNECTIONS:,})" if real else f"one spec may ask for at most {cap:,}")
        raise volume_error(spec, f"about {shown} connections (rate × window + bursts): {how}")


def check_lines(spec: GenerateSpec, lines: int) -> None:
    """The corpus's size in lines, known once every kind of connection is recorded."""
    if lines > MAX_GENERATE_LINES:
        raise volume_error(spec, f"the corpus would have {lines:,} lines ({spec.log_level}); one spec may ask for "
                                 f"at most {MAX_GENERATE_LINES:,}")


def volume_error(spec: GenerateSpec, message: str) -> BadInputError:
    return _Where(spec.positions, spec.path).error(message, spec.volume_at)


def _volume_at(spec: GenerateSpec, raw: dict[str, Any]) -> tuple:
    """The key that asks for the most connections: the rate, else the largest burst."""
    normal = spec.rate_per_s * spec.duration if spec.mix else 0.0
    sizes = [b.count * b.connections[1] for b in spec.bursts]
    if sizes and max(sizes) > normal:
        i = sizes.index(max(sizes))
        burst, given = spec.bursts[i], raw["bursts"][i]
        if "connections" in given and ("count" not in given or burst.connections[1] >= burst.count):
            return ("bursts", i, "connections")
        return ("bursts", i, "count") if "count" in given else ("bursts", i)
    rate = raw.get("rate") or {}
    for key in ("per_minute", "per_hour"):
        if key in rate:
            return ("rate", key)
    return ("window", "duration") if "duration" in (raw.get("window") or {}) else ("rate",)


def _at_most(value: float, limit: float, unit: str, where: _Where, at: tuple) -> None:
    if value > limit:
        shown = f"{value:,.0f}" if value < 1e15 else f"{value:.3g}"
        unit = f" {unit}" if unit else ""
        raise where.error(f"{shown}{unit} is more than the {limit:,.0f}{unit} allowed", at)


def _ordered(value: tuple[float, float], where: _Where, at: tuple) -> tuple[float, float]:
    if value[0] > value[1]:
        raise where.error(f"range [{value[0]:g}, {value[1]:g}] goes downwards", at)
    return value


def _pool(name: str, item: Any, defaults: dict[str, Any], where: _Where, at: tuple) -> Pool:
    cidrs = item if isinstance(item, list) else item["cidrs"]
    hosts = defaults["pool_hosts"] if isinstance(item, list) else int(item.get("hosts", defaults["pool_hosts"]))
    if not isinstance(item, list):
        _at_most(hosts, MAX_POOL_HOSTS, "", where, at + ("hosts",))
    networks = []
    for j, text in enumerate(cidrs):
        sub = at + ((j,) if isinstance(item, list) else ("cidrs", j))
        try:
            net = ipaddress.ip_network(str(text).strip(), strict=False)
        except ValueError:
            raise where.error(f"not a CIDR network: {text!r}", sub) from None
        if net.is_loopback:
            raise where.error(f"{text} is loopback: pools are the addresses the log shows, not the recording's",
                              sub)
        networks.append(net)
    return Pool(name, tuple(networks), hosts)


def _building_block(folder: Path, name: str) -> Path | None:
    """A mix entry's scenario: beside the spec first (a user's own building block wins), else,
    for a bare file name, the one shipped with sshsim (scenarios/generate/, simulator/shipped.py),
    so a spec written anywhere can use `scenario: publickey-shell.yaml`."""
    own = (folder / name).resolve()
    if own.is_file():
        return own
    library = shipped("scenarios")
    if library is None or Path(name).name != name or name in ("", ".", ".."):
        return None
    block = library / "generate" / name
    return block.resolve() if block.is_file() and not block.is_symlink() else None


def _entry(item: dict[str, Any], at: tuple, spec: GenerateSpec, folder: Path, where: _Where,
           names: set[str], default_sources: str = "default") -> Entry:
    if ("scenario" in item) == ("probe" in item):
        raise where.error("an entry gives exactly one of `scenario` and `probe`", at)
    name = item.get("name") or (Path(item["scenario"]).stem if "scenario" in item else item["probe"])
    if name in names:
        raise where.error(f"entry name {name!r} is used twice (give each entry its own `name`)", at + ("name",))
    names.add(name)
    pool = item.get("sources", default_sources)
    if pool not in spec.pools:
        raise where.error(f"unknown source pool {pool!r} (known: {', '.join(sorted(spec.pools))})", at + ("sources",))
    scenario = None
    if "scenario" in item:
        scenario = _building_block(folder, str(item["scenario"]))
        if scenario is None:
            raise where.error(f"scenario file not found: {item['scenario']} (looked beside the spec and "
                              "among the shipped building blocks, scenarios/generate/)", at + ("scenario",))
    elif any(k in item for k in ("profiles", "vars", "user", "session")):
        bad = next(k for k in ("profiles", "vars", "user", "session") if k in item)
        raise where.error(f"a probe takes no `{bad}`", at + (bad,))
    profiles: list[str | None] = list(item.get("profiles", [None]))
    known = known_profiles()
    for j, profile in enumerate(profiles):
        if profile is not None and profile not in known:
            close = difflib.get_close_matches(profile, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(known))})"
            raise where.error(f"unknown client profile {profile!r}{hint}", at + ("profiles", j))
    variables = item.get("vars", {})
    keys = sorted(variables)
    choices = [variables[k] if isinstance(variables[k], list) else [variables[k]] for k in keys]
    for k, values in zip(keys, choices, strict=True):
        if not values:
            raise where.error("an empty list gives no variant", at + ("vars", k))
    count = math.prod(len(c) for c in choices) * len(profiles)
    if count > MAX_MATRIX_CELLS:
        raise where.error(f"{count:,} variants (profiles × variable values); one spec may have at most "
                          f"{MAX_MATRIX_CELLS:,}", at)
    variants = [Variant(p, tuple(zip(keys, combo, strict=True)))
                for p in profiles for combo in itertools.product(*choices)]
    user: str | tuple[str, ...] = item.get("user", "valid")
    if isinstance(user, list):
        user = tuple(user)
    session = item.get("session")
    weight = float(item.get("weight", 1.0))
    _at_most(weight, MAX_GENERATE_WEIGHT, "", where, at + ("weight",))
    if session is not None:
        _at_most(_range(session, (0.0, 0.0))[1], MAX_GENERATE_SECONDS, "s", where, at + ("session",))
    return Entry(
        name=name,
        weight=weight,
        scenario=scenario,
        probe=item.get("probe"),
        variants=variants,
        user=user,
        sources=pool,
        session=_ordered(_range(session, (0.0, 0.0)), where, at + ("session",)) if session is not None else None,
        position=where.positions.get(at),
    )
