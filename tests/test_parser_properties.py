"""Property tests: nothing a log file can hold makes the parser raise."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.logs import group_connections, group_events, normalise_event, parse_lines
from simulator.logs.reader import LogReader

ROOT = Path(__file__).resolve().parents[1]
_SEED = [
    p for p in (ROOT.parent / "shared" / "seed" / "sshd-debug1-motty-secureblackbox.log",
                ROOT / "tests" / "data" / "seed" / "sshd-debug1-motty-secureblackbox.log") if p.exists()
]
REAL_LINES = _SEED[0].read_text().splitlines() if _SEED else []
LOCAL = sorted((ROOT / "tests" / "data" / "local").glob("*.log"))
REAL_LINES += LOCAL[0].read_text().splitlines() if LOCAL else []


def _exercise(lines: list[str]) -> None:
    events = list(group_events(parse_lines(lines)))
    assert len(events) == len(lines)
    for ev in events:
        json.dumps(ev.to_dict())
        normalise_event(ev)
    group_connections(parse_lines(lines))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_random_bytes_never_raise(chunks: list[bytes]) -> None:
    data = b"\n".join(chunks)
    lines = data.decode("utf-8", "backslashreplace").split("\n")
    _exercise(lines)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000))
def test_reader_never_raises_on_random_files(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "random.log"
    path.write_bytes(data)
    reader = LogReader(path)
    _exercise(list(reader.lines()))


@st.composite
def mutated_real_lines(draw: st.DrawFn) -> list[str]:
    picks = draw(st.lists(st.sampled_from(REAL_LINES), min_size=1, max_size=12))
    out = []
    for line in picks:
        op = draw(st.sampled_from(["keep", "cut", "insert", "delete", "replace", "dup"]))
        if line and op != "keep":
            i = draw(st.integers(0, len(line)))
            if op == "cut":
                line = line[:i]
            elif op == "insert":
                line = line[:i] + draw(st.text(max_size=20)) + line[i:]
            elif op == "delete":
                line = line[:i] + line[i + draw(st.integers(1, 10)):]
            elif op == "replace":
                line = line[:i] + draw(st.sampled_from(["[", "]", ":", " ", "\r", "{", "%", "\\", "\x00", "é"])) + line[i + 1:]
            else:
                line = line + line
        out.append(line)
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_real_lines())
def test_mutated_real_lines_never_raise(lines: list[str]) -> None:
    _exercise(lines)


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=1, max_value=40),
       st.lists(st.integers(min_value=0, max_value=130), max_size=8))
def test_has_long_line_is_the_longest_line_over_the_limit(limit: int, lengths: list[int]) -> None:
    """The reader's chunk check (windows of half the limit) answers as measuring every line."""
    from simulator.logs.reader import has_long_line

    text = "".join("x" * n + "\n" for n in lengths)
    assert has_long_line(text, limit) == (bool(lengths) and max(lengths) > limit)


def test_reader_cuts_long_lines_in_a_plain_file(tmp_path: Path) -> None:
    """A plain file is read in chunks: a line over the limit among short ones is still cut,
    and the short ones are not."""
    path = tmp_path / "auth.log"
    path.write_text("short\n" * 1000 + "y" * 50 + "\n" + "z" * 20 + "\n", encoding="utf-8")
    reader = LogReader(path, max_chars=20)
    lines = list(reader.lines())
    assert lines[:1000] == ["short"] * 1000
    assert lines[1000] == "y" * 20
    assert lines[1001] == "z" * 20
    assert reader.warnings


def _field_by_field_is_fields(lines: list[str]) -> None:
    """`Event.field(name)` asked first (no dict built yet) is `fields.get(name)`, for every field
    of every entry and for a name the entry lacks."""
    alone = list(parse_lines(lines))
    whole = list(parse_lines(lines))
    for a, b in zip(alone, whole, strict=True):
        names = [n for n in (b.spec.fields if b.spec is not None else ()) if n is not None] + ["no_such_field"]
        got = {n: a.field(n) for n in names}
        assert got == {n: b.fields.get(n) for n in names}, a.raw
        assert all(type(got[n]) is type(b.fields.get(n)) for n in names), a.raw
        assert {n: a.field(n) for n in names} == got  # and again, once a.fields may be built


def test_one_field_is_what_fields_gives_on_real_logs() -> None:
    logs = sorted((ROOT / "tests" / "data" / "versions").rglob("*.log"))
    assert REAL_LINES and logs
    _field_by_field_is_fields(REAL_LINES)
    for log in logs:
        _field_by_field_is_fields(log.read_text(encoding="utf-8", errors="backslashreplace").splitlines())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_real_lines())
def test_one_field_is_what_fields_gives_on_mutated_lines(lines: list[str]) -> None:
    _field_by_field_is_fields(lines)
