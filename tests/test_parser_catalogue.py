"""The catalogue as data: well-formed entries, patterns that compile, cheap dispatch."""

from __future__ import annotations

import re

import pytest

from simulator.logs.catalogue import (
    LEVELS,
    Catalogue,
    default_catalogue,
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
