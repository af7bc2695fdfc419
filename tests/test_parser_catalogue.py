"""The catalogue as data: well-formed entries, patterns that compile, cheap dispatch, a start-up
that loads only what the catalogue needs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.logs.catalogue import (
    LEVELS,
    Catalogue,
    EventSpec,
    _spec_from_entry,
    default_catalogue,
    digits_generalised,
    load_specs,
    message_keys,
    template_key,
    template_to_regex,
)

VERSIONS = re.compile(r"^(any|(?:(?:>=|<)?\d+\.\d+(?:-\d+\.\d+)?)(?:, (?:>=|<)?\d+\.\d+(?:-\d+\.\d+)?)*)$")


def test_every_entry_is_complete() -> None:
    specs = load_specs()
    assert len(specs) > 3000
    for spec in specs:
        assert re.fullmatch(r"[a-z0-9_]+(\.[A-Za-z0-9_]+)+", spec.name), spec.name
        assert spec.level in LEVELS
        assert VERSIONS.match(spec.versions), (spec.origin, spec.name, spec.versions)
        assert spec.source
        re.compile(spec.regex)


def test_hand_written_topics_exist() -> None:
    origins = {s.origin for s in load_specs()}
    for topic in ("connection", "listener", "kex", "auth", "pam", "channel", "session", "disconnect"):
        assert f"{topic}.yaml" in origins


def test_template_compilation() -> None:
    regex, fields = template_to_regex("channel {id:int}: new [{name}] {{x}} {_skip:word} {rest:rest}")
    assert fields == [("id", "int"), ("name", ""), ("rest", "rest")]
    m = re.fullmatch(regex, "channel 0: new [server-session] {x} abc tail text")
    assert m and m.group("id") == "0" and m.group("name") == "server-session" and m.group("rest") == "tail text"


def test_keys_of_templates_and_messages_agree() -> None:
    key = template_key("channel {id:int}: new [{name}]")
    assert key == "channel : new"
    assert key in message_keys("channel 12: new [server-session]")
    assert template_key("{path}:{line:int}: matching key found") == ""
    assert template_key("kex: algorithm: {kex}") == "kex: algorithm:"


def test_dispatch_keeps_candidate_lists_short() -> None:
    cat = default_catalogue()
    sizes = cat.bucket_sizes()
    wildcard = sizes[""]
    assert wildcard < 300
    assert max(n - wildcard for k, n in sizes.items() if k) < 250


def test_hand_written_entries_win_over_extracted_ones() -> None:
    cat = default_catalogue()
    spec, _ = cat.match("Accepted publickey for user from 10.199.34.74 port 53688 ssh2: ED25519 SHA256:x")
    assert spec.name == "auth.accepted" and not spec.origin.startswith("source/")


def test_extracted_entries_cover_the_long_tail() -> None:
    cat = default_catalogue()
    spec, groups = cat.match("mm_request_send: entering, type 120")
    assert spec.origin.startswith("source/") and spec.level == "DEBUG3"
    assert spec.source.startswith("monitor_wrap.c")


def test_bad_entries_are_reported_with_their_place(tmp_path) -> None:
    (tmp_path / "bad.yaml").write_text("- event: x.y\n  level: LOUD\n  pattern: a\n  versions: any\n  source: s\n")
    from simulator.logs.catalogue import CatalogueError

    with pytest.raises(CatalogueError, match="bad.yaml entry 1: unknown level"):
        load_specs(tmp_path)


def test_cache_is_bounded() -> None:
    cat = Catalogue(load_specs(), cache_size=10)
    for i in range(25):
        cat.match(f"Forked child {i}.")
    assert len(cat.cache) <= 10


ROOT = Path(__file__).resolve().parent.parent
# What loading the catalogue alone does not need (issue 13: a fresh process loads it in under
# 100 ms): the package's other modules, and the libraries only they use.
NOT_FOR_THE_CATALOGUE = ("simulator.logs.connections", "simulator.logs.parser", "simulator.logs.normalise",
                         "simulator.logs.events", "simulator.logs.reader", "simulator.logs.formats", "yaml", "msgspec")


def test_loading_the_catalogue_imports_nothing_of_parsing(tmp_path: Path) -> None:
    code = ("import sys; before = set(sys.modules); "
            "from simulator.logs.catalogue import default_catalogue; default_catalogue(); "
            "print(' '.join(sorted(set(sys.modules) - before)))")
    env = dict(os.environ, PYTHONPATH=str(ROOT), SSHSIM_CACHE=str(tmp_path))
    for run in ("cold", "warm"):  # the first run reads the YAML (yaml: imported, then allowed) and fills the cache
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        loaded = set(done.stdout.split())
        assert "simulator.logs.catalogue" in loaded
        unwanted = [m for m in NOT_FOR_THE_CATALOGUE if m in loaded and not (run == "cold" and m == "yaml")]
        assert not unwanted, f"{run} load imported {unwanted}"


def test_the_package_names_are_those_of_its_modules() -> None:
    # simulator.logs imports each name on first use (start-up cost): the same objects as before
    import simulator.logs as logs
    from simulator.logs import catalogue, connections, events, normalise, parser, reader, tags

    by_module = {catalogue: ("Catalogue", "EventSpec", "default_catalogue"),
                 connections: ("Connection", "ConnectionTracker", "group_connections", "group_events"),
                 events: ("Event",), normalise: ("normalise_event", "normalise_message"),
                 parser: ("RecordParser", "parse_lines", "parse_records"), reader: ("LogReader",)}
    for module, names in by_module.items():
        for name in names:
            assert getattr(logs, name) is getattr(module, name), name
    assert sorted([n for names in by_module.values() for n in names] + ["parse_file"]) == sorted(logs.__all__)
    assert tags.__name__ == "simulator.logs.tags" and set(logs.__all__) <= set(dir(logs))
    with pytest.raises(AttributeError):
        logs.no_such_name  # noqa: B018


# A message whose number is missing ("port ") has the shape of the real line once digits are
# deleted: caught by a looser entry, and that entry kept for the shape, it took the real lines
# that follow (a CI run's test order made one parse's answer depend on an earlier one's input).
POISON = "Dec  5 16:56:28 localhost sshd-session[6887]: Connection closed by 127.0.0.1 port  [preauth]"
REAL = "Dec  5 16:56:28 localhost sshd-session[6887]: Connection closed by 127.0.0.1 port 57314 [preauth]"


def test_a_line_cannot_teach_its_shape_a_wrong_answer() -> None:
    from simulator.logs import parse_lines

    alone = [e.event for e in parse_lines([REAL])]
    # in one parse (the parser's own shape cache), then in a later one (the catalogue's)
    assert [e.event for e in parse_lines([POISON, REAL, REAL])][1:] == alone * 2 == ["disconnect.closed"] * 2
    assert [e.event for e in parse_lines([REAL])] == alone
    cat = default_catalogue()
    body = REAL.split("]: ", 1)[1].removesuffix(" [preauth]")
    assert cat.match(POISON.split("]: ", 1)[1].removesuffix(" [preauth]"))[0].name != "disconnect.closed"
    assert cat.match(body)[0].name == "disconnect.closed"


def _entry(pattern: str, name: str) -> EventSpec:
    return _spec_from_entry({"event": name, "level": "INFO", "versions": ">=1.0", "source": "test.c",
                             "pattern": pattern}, "test.yaml", 0)


def test_a_literal_digit_keeps_its_entry_against_a_shape() -> None:
    """An entry with a literal digit ("status 0") before a general one: a message the general
    one matched ("status 5") must not make the general one the answer for the digit's own."""
    zero, any_code = _entry("Exit status 0", "exit.clean"), _entry("Exit status {code:int}", "exit.code")
    cat = Catalogue([zero, any_code])
    assert cat.match("Exit status 5")[0] is any_code
    assert cat.match("Exit status 0")[0] is zero
    assert cat.match("Exit status 7")[0] is any_code
    assert not cat.shape_safe("Exit status 5", any_code) and cat.shape_safe("Exit status 0", zero)


@pytest.mark.parametrize("regex, general", [
    (r"ssh2 (?P<port>\d+) x{2,3}", r"ssh\d (?P<port>\d+) x{2,3}"),
    (r"(?P<p>ssh[12])", r"(?P<p>ssh[0-912])"),
    (r"[0-9a-f]+:[^ ]", r"[0-9a-f]+:[^ ]"),
    (r"a[^1] b", None),
    (r"(\d)\1", None),
])
def test_digits_generalised(regex: str, general: str | None) -> None:
    assert digits_generalised(regex) == general
