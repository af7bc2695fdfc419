"""The catalogue's compiled form is cached per user: the same entries, and a cache file that is
damaged, tampered with or not the user's own is ignored, never trusted."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest

from simulator.logs import catalogue_cache
from simulator.logs.catalogue import DATA_DIR, Catalogue, _row_of, load_specs
from simulator.logs.parser import parse_lines

LINE = "Nov 25 08:30:21 localhost sshd[8059]: Accepted password for user from 127.0.0.1 port 41500 ssh2"


def _cache_file(folder: Path) -> Path:
    files = list(folder.glob("catalogue-*.json"))
    assert len(files) == 1, files
    return files[0]


def test_cached_entries_equal_those_read_from_yaml(tmp_path: Path) -> None:
    fresh = load_specs()
    first = load_specs(cache=tmp_path)  # writes the cache
    cached = load_specs(cache=tmp_path)  # reads it
    assert [_row_of(s) for s in cached] == [_row_of(s) for s in fresh] == [_row_of(s) for s in first]
    # every field, those made from the row too (kept groups, tag bits), and entries that behave
    # as EventSpec(...)'s: the cached ones are made a column at a time, not by __init__
    assert cached == fresh and list(map(hash, cached)) == list(map(hash, fresh))
    assert [(s.named, s.flags) for s in cached] == [(s.named, s.flags) for s in fresh]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cached[0].name = "changed"
    assert all(s.own is None for s in cached)  # compiled when first needed
    assert (_cache_file(tmp_path).stat().st_mode & 0o777) == 0o600
    ev = next(parse_lines([LINE], input_format="syslog", catalogue=Catalogue(cached)))
    assert ev.event == "auth.accepted" and ev.fields["port"] == 41500


def _tamper(path: Path) -> None:
    text = path.read_text()
    path.write_text(text.replace('"auth.accepted"', '"auth.rejected"'))


def test_a_tampered_cache_is_ignored_and_rewritten(tmp_path: Path) -> None:
    load_specs(cache=tmp_path)
    path = _cache_file(tmp_path)
    _tamper(path)
    specs = load_specs(cache=tmp_path)
    assert "auth.accepted" in {s.name for s in specs} and "auth.rejected" not in {s.name for s in specs}
    assert '"auth.rejected"' not in path.read_text()  # written again from the YAML


def test_a_cache_writable_by_others_is_not_read(tmp_path: Path) -> None:
    load_specs(cache=tmp_path)
    path = _cache_file(tmp_path)
    key = path.name[len("catalogue-"):-len(".json")]
    assert catalogue_cache.load(tmp_path, key) is not None
    os.chmod(path, 0o666)
    assert catalogue_cache.load(tmp_path, key) is None


def test_a_symlinked_cache_is_not_followed(tmp_path: Path) -> None:
    real = tmp_path / "real"
    load_specs(cache=real)
    path = _cache_file(real)
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / path.name).symlink_to(path)
    key = path.name[len("catalogue-"):-len(".json")]
    assert catalogue_cache.load(folder, key) is None


@pytest.mark.parametrize("damage", ["", "not json\n[]", "0" * 64 + "\n[]"])
def test_a_damaged_cache_is_ignored(tmp_path: Path, damage: str) -> None:
    load_specs(cache=tmp_path)
    path = _cache_file(tmp_path)
    path.write_text(damage)
    key = path.name[len("catalogue-"):-len(".json")]
    assert catalogue_cache.load(tmp_path, key) is None
    assert len(load_specs(cache=tmp_path)) == len(load_specs())


def test_changed_data_is_a_new_key(tmp_path: Path) -> None:
    data = tmp_path / "events"
    shutil.copytree(DATA_DIR, data)
    files = sorted(data.glob("*.yaml")) + sorted((data / "source").glob("*.yaml"))
    before = catalogue_cache.data_key(files, data)
    auth = data / "auth.yaml"
    auth.write_text(auth.read_text() + "\n")
    assert catalogue_cache.data_key(files, data) != before


def _rewrite_rows(path: Path, change) -> None:
    """Rewrite the cache's rows with `change` applied, with a valid checksum: what a hand edit
    or a bug would leave; only the shape check stands between it and the parser."""
    rows = json.loads(path.read_text().partition("\n")[2])
    change(rows)
    payload = json.dumps(rows, separators=(",", ":"))
    path.write_text(catalogue_cache._checksum(payload) + "\n" + payload)


def _set(row: int, column: int, value: object):
    def change(rows: list) -> None:
        rows[row][column] = value
    return change


@pytest.mark.parametrize("change", [
    _set(0, 0, 17),                          # a name that is not text
    _set(5, 9, "yes"),                       # fallback not a bool
    _set(-1, 4, ["addr", 3]),                # a field name that is not text
    _set(7, 5, [None]),                      # an int field that is not named
    _set(3, 11, [["endpoint"]]),             # a tag that is not text
    lambda rows: rows[2].pop(),              # a row one column short
    lambda rows: rows.append("row"),         # a row that is not a list
    lambda rows: rows.__setitem__(slice(None), {"rows": 1}),  # no list of rows
], ids=["name", "fallback", "field", "int-field", "tag", "short-row", "not-a-row", "not-rows"])
def test_a_cache_of_the_wrong_shape_is_ignored(tmp_path: Path, change) -> None:
    load_specs(cache=tmp_path)
    path = _cache_file(tmp_path)
    _rewrite_rows(path, change)
    key = path.name[len("catalogue-"):-len(".json")]
    assert catalogue_cache.load(tmp_path, key) is None
    assert [_row_of(s) for s in load_specs(cache=tmp_path)] == [_row_of(s) for s in load_specs()]


@pytest.mark.parametrize("column, value", [(1, "LOUD"), (11, ["no-such-tag"])], ids=["level", "tag"])
def test_a_cached_level_or_tag_the_code_does_not_know_rereads_the_yaml(tmp_path: Path, column: int,
                                                                      value: object) -> None:
    load_specs(cache=tmp_path)
    _rewrite_rows(_cache_file(tmp_path), _set(0, column, value))
    assert [_row_of(s) for s in load_specs(cache=tmp_path)] == [_row_of(s) for s in load_specs()]


def test_a_truncated_cache_is_ignored(tmp_path: Path) -> None:
    load_specs(cache=tmp_path)
    path = _cache_file(tmp_path)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    key = path.name[len("catalogue-"):-len(".json")]
    assert catalogue_cache.load(tmp_path, key) is None
