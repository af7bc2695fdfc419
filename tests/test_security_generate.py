"""`sshsim generate` on hostile or careless specs: bounded volume, finite numbers, a full disk.

A spec (or a --var) may ask for any volume; what one run may plan is capped
(simulator/limits.py), checked when the spec is read, before anything is drawn or recorded, so
the refusal costs neither memory nor time. Numbers a spec cannot mean (.inf, .nan, negative,
10**30) are refused at their line. A disk that fills while the corpus is written keeps the
complete part under the names asked for, with a one-line error, and no temporary file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from peak_rss import run_with_peak

from simulator.errors import BadInputError
from simulator.generate import apply_overrides, load_spec
from simulator.limits import (MAX_GENERATE_CONNECTIONS, MAX_GENERATE_LINES, MAX_MATRIX_CELLS,
                              MAX_REAL_ENGINE_CONNECTIONS)

from conftest import needs_local_sshd

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = ROOT / "scenarios" / "generate"
EXAMPLE = BLOCKS / "bruteforce-mix.yaml"
# The example's line `per_minute: {{ rate }}`: where every rate error must point.
RATE_LINE = next(i for i, line in enumerate(EXAMPLE.read_text().splitlines(), 1) if "per_minute:" in line)


def run_measured(*args: str, peak_file: Path) -> tuple[int, str, str, int]:
    """`sshsim ARGS`: exit code, stdout, stderr and the command's own peak RSS in KiB."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out, err = peak_file.with_suffix(".out"), peak_file.with_suffix(".err")
    with out.open("wb") as o, err.open("wb") as e:
        code, peak_mb = run_with_peak([sys.executable, "-m", "simulator", *args], peak_file, stdin=subprocess.DEVNULL,
                                      stdout=o, stderr=e, env=env, timeout=300)
    return code, out.read_text(), err.read_text(), int(peak_mb * 1024)


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sshsim: error: ") and "internal error" not in lines[0], err
    assert "Traceback" not in err
    return lines[0]


# -- volume ---------------------------------------------------------------------------------
def test_huge_rate_var_is_refused_at_the_rate_line_in_flat_memory(tmp_path: Path) -> None:
    """`--var rate=1000000` asked numpy for 22 GiB: now exit 2, one line naming the spec's rate
    line and the cap, and the process's peak memory the same as for a rate a million times
    larger (nothing is allocated by volume before the check)."""
    out = tmp_path / "out" / "day.log"
    out.parent.mkdir()
    peaks = {}
    for rate in ("1000000", "1000000000000"):
        code, _, err, peaks[rate] = run_measured("generate", str(EXAMPLE), "-o", str(out), "--var",
                                                 f"rate={rate}", peak_file=tmp_path / f"peak-{rate}")
        assert code == 2, err
        line = one_error_line(err)
        assert f"{EXAMPLE}:{RATE_LINE}:" in line and "rate.per_minute" in line
        assert f"at most {MAX_GENERATE_CONNECTIONS:,}" in line
        assert not list(out.parent.iterdir())
    assert all(0 < peak < 256 * 1024 for peak in peaks.values()), peaks  # KiB: far below 22 GiB
    assert abs(peaks["1000000"] - peaks["1000000000000"]) < 32 * 1024, peaks


def test_the_cap_is_what_the_spec_asks_for_on_average() -> None:
    """Just under the cap loads; just over it is refused (rate × window + bursts at their most)."""
    per_minute = MAX_GENERATE_CONNECTIONS / 1440
    bursts = 5 * 90  # the example's bursts at their largest
    load_spec(EXAMPLE, {"rate": (MAX_GENERATE_CONNECTIONS - bursts - 1000) / 1440})
    with pytest.raises(BadInputError) as info:
        load_spec(EXAMPLE, {"rate": per_minute})
    assert info.value.line == RATE_LINE and info.value.key == "rate.per_minute"


def test_real_engine_has_its_own_smaller_cap() -> None:
    """`--engine real` runs every connection against sshd: refused above its cap when chosen
    on the command line too, at the spec's rate line."""
    rate = 2 * MAX_REAL_ENGINE_CONNECTIONS / 1440
    spec = load_spec(EXAMPLE, {"rate": rate})
    with pytest.raises(BadInputError) as info:
        apply_overrides(spec, engine="real")
    assert info.value.line == RATE_LINE and "real engine" in info.value.message
    assert f"{MAX_REAL_ENGINE_CONNECTIONS:,}" in info.value.message


@pytest.mark.parametrize(
    "extra, key, words",
    [
        ("bursts: [{count: 1000000000, mix: [{probe: tcp-close}]}]", "bursts[0].count", "bursts in all"),
        ("bursts: [{connections: 1.0e+12, mix: [{probe: tcp-close}]}]", "bursts[0].connections", "connections"),
        ("bursts: [{interval: [1, 1.0e+20], mix: [{probe: tcp-close}]}]", "bursts[0].interval", "allowed"),
        ("window: {duration: 1000000000000000000000000000000}", "window.duration", "allowed"),
        ("window: {duration: 99999999999d}", "window.duration", "allowed"),
        ("window: {start: '9999-12-31T00:00:00'}", "window.start", "give a year"),
        ("sources: {p: {cidrs: [10.0.0.0/8], hosts: 1000000000}}", "sources.p.hosts", "allowed"),
        ("users: [{name: a, weight: 1.0e+300}]", "users[0].weight", "allowed"),
        ("rate: {per_minute: 1, curve: [1.0e+30" + ", 1" * 23 + "]}", "rate.curve[0]", "allowed"),
    ],
)
def test_absurd_numbers_are_refused_at_their_line(tmp_path: Path, extra: str, key: str, words: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(f"mix:\n  - {{name: x, scenario: {BLOCKS}/publickey-exec.yaml}}\n{extra}\n")
    with pytest.raises(BadInputError) as info:
        load_spec(path)
    assert (info.value.file, info.value.line, info.value.key) == (str(path), 3, key)
    assert words in info.value.message and "\n" not in str(info.value)


def test_variants_are_counted_before_they_are_made(tmp_path: Path) -> None:
    """Ten variables of ten values each would be 10**10 variants (each one a recording)."""
    values = "[" + ", ".join(map(str, range(10))) + "]"
    variables = ", ".join(f"v{i}: {values}" for i in range(10))
    path = tmp_path / "spec.yaml"
    path.write_text(f"mix:\n  - {{name: x, scenario: {BLOCKS}/publickey-exec.yaml, vars: {{{variables}}}}}\n")
    with pytest.raises(BadInputError) as info:
        load_spec(path)
    assert info.value.line == 2 and info.value.key == "mix[0]"
    assert "10,000,000,000 variants" in info.value.message and f"{MAX_MATRIX_CELLS:,}" in info.value.message


# -- numbers that mean nothing --------------------------------------------------------------
@pytest.mark.parametrize(
    "text, key, words",
    [
        ("rate: {per_minute: .inf}", "rate.per_minute", ".inf is not a finite number"),
        ("rate: {per_minute: .nan}", "rate.per_minute", ".nan is not a finite number"),
        ("rate: {per_hour: -.inf}", "rate.per_hour", "-.inf is not a finite number"),
        ("rate: {per_minute: -3}", "rate.per_minute", "minimum"),
        ("window: {start: .inf}", "window.start", ".inf is not a finite number"),
        ("window: {duration: .inf}", "window.duration", ".inf is not a finite number"),
        ("window: {duration: -60}", "window.duration", "minimum"),
        ("bursts: [{interval: .nan, mix: [{probe: tcp-close}]}]", "bursts[0].interval", ".nan is not a finite"),
        ("bursts: [{connections: [-5, 3], mix: [{probe: tcp-close}]}]", "bursts[0].connections[0]", "minimum"),
        ("users: [{name: a, weight: .nan}]", "users[0].weight", ".nan is not a finite number"),
    ],
)
def test_non_finite_and_negative_numbers_in_a_spec(tmp_path: Path, text: str, key: str, words: str) -> None:
    """.nan passes every schema bound (it compares false): refused before the schema, at its line."""
    path = tmp_path / "spec.yaml"
    path.write_text(f"mix:\n  - {{name: x, scenario: {BLOCKS}/publickey-exec.yaml}}\n{text}\n")
    with pytest.raises(BadInputError) as info:
        load_spec(path)
    assert (info.value.file, info.value.line, info.value.key) == (str(path), 3, key)
    assert words in info.value.message


@pytest.mark.parametrize("value", [".inf", ".nan", "-.inf", "1.0e+400", "-5", "0", "10**30",
                                   "1000000000000000000000000000000"])
def test_var_values_that_mean_nothing_exit_2_at_the_rate_line(tmp_path: Path, value: str) -> None:
    """--var values pass through jinja2 and YAML: whatever they become, one line at the spec's
    rate line, exit 2, nothing written."""
    out = tmp_path / "out" / "day.log"
    out.parent.mkdir()
    code, _, err, _ = run_measured("generate", str(EXAMPLE), "-o", str(out), "--var", f"rate={value}",
                                   peak_file=tmp_path / "peak")
    assert code == 2, err
    line = one_error_line(err)
    assert f"{EXAMPLE}:{RATE_LINE}:" in line and "rate.per_minute" in line
    assert not list(out.parent.iterdir())


# -- against the real sshd ------------------------------------------------------------------
FAST_SPEC = f"""
seed: 5
window: {{start: "2024-03-11T00:00:00", duration: 2h}}
rate: {{per_minute: {{{{ rate }}}}, curve: flat}}
log_level: {{{{ level }}}}
vars: {{rate: 60, level: INFO}}
mix:
  - {{name: key-exec, scenario: {BLOCKS}/publickey-exec.yaml, profiles: [asyncssh-2.24.1], session: [0.2, 2]}}
  - {{name: scan, probe: tcp-close}}
"""


@needs_local_sshd
@pytest.mark.sshd
def test_lines_are_capped_once_recordings_say_how_many(tmp_path: Path) -> None:
    """At DEBUG3 a connection is a hundred lines: a rate within the connection cap can still ask
    for too many lines. Refused after the (two) recordings, before anything is written."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(FAST_SPEC)
    rate = MAX_GENERATE_CONNECTIONS * 0.9 / 120
    out = tmp_path / "out" / "day.log"
    out.parent.mkdir()
    code, _, err, _ = run_measured("generate", str(spec), "-o", str(out), "-q", "--var", f"rate={rate}",
                                      "--var", "level=DEBUG3", peak_file=tmp_path / "peak")
    assert code == 2, err
    line = one_error_line(err)
    assert f"{spec}:4:" in line and "lines" in line and f"{MAX_GENERATE_LINES:,}" in line
    assert not list(out.parent.iterdir())


@needs_local_sshd
@pytest.mark.sshd
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1) to mount a private tmpfs")
def test_full_disk_keeps_the_complete_part_and_says_so(tmp_path: Path) -> None:
    """The corpus (36,000 connections, 26 MB) goes to a 16 MiB tmpfs, mounted in a private mount
    namespace so that it goes away with the process. The first block of connections (16,384,
    12 MB with their labels) fits: exit 2, one line naming the output and no temporary file,
    the log cut after its last whole line, and every kept label's lines in the kept log."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    spec = tmp_path / "spec.yaml"
    spec.write_text(FAST_SPEC)
    disk, kept = tmp_path / "disk", tmp_path / "kept"
    disk.mkdir()
    kept.mkdir()
    script = (
        'mount -t tmpfs -o size=16m sshsim-test-disk "$1" || exit 99\n'
        '"$4" -m simulator generate "$3" -o "$1/day.log" -q --var rate=300 2>"$2/stderr"\n'
        'echo $? > "$2/code"\n'
        'ls -A "$1" > "$2/listing"\n'
        'cp "$1"/* "$2"/ 2>/dev/null\n'
        "exit 0\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(disk),
                    str(kept), str(spec), sys.executable], cwd=ROOT, env=env, check=True, timeout=300)
    assert not list(disk.iterdir())  # the tmpfs was only ever in the private namespace
    err = (kept / "stderr").read_text()
    assert (kept / "code").read_text().strip() == "2", err
    line = one_error_line(err)
    assert line.startswith(f"sshsim: error: {disk}/day.log: No space left on device: kept the ")
    assert "incomplete corpus" in line and ".tmp" not in line and "Errno" not in line
    assert (kept / "listing").read_text().split() == ["day.log", "day.log.labels.jsonl"]  # no temp file

    log = (kept / "day.log").read_bytes()
    assert log.endswith(b"\n") and len(log) > 100_000
    lines = log.decode().splitlines()
    assert f"kept the {len(lines):,} lines written" in line
    labels = [json.loads(x) for x in (kept / "day.log.labels.jsonl").read_text().splitlines()]
    assert f"the labels of the {len(labels):,} connections" in line
    assert labels, "some connections finished before the disk filled"
    for label in labels:
        assert label["lines"] and max(label["lines"]) <= len(lines)
        for n in label["lines"]:
            assert "sshd[" in lines[n - 1]
        if label["source"] is not None:
            assert any(label["source"] in lines[n - 1] for n in label["lines"])
    # a whole log line is a whole syslog line: time stamp, host, program
    assert all(x[:3] == "Mar" and " sshd[" in x for x in lines)


def _writing(folder: Path) -> bool:
    """Whether a temporary file in `folder` holds more than 1 MiB. The generator renames its
    temporary files into place while this looks, so one listed may be gone by the time it is
    measured (CI saw that once): a file gone is a file not being written."""
    for p in folder.iterdir():
        if p.name.endswith(".tmp"):
            try:
                if p.stat().st_size > 1 << 20:
                    return True
            except FileNotFoundError:
                continue
    return False


@needs_local_sshd
@pytest.mark.sshd
def test_sigterm_while_writing_keeps_the_complete_part(tmp_path: Path) -> None:
    """SIGTERM once the corpus has begun to be written (a temporary file with lines in it):
    exit 143, one line saying what was kept, the kept log whole lines only, no temporary file.
    The corpus is large enough (800,000 lines) that writing it outlasts the signal's delivery."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(FAST_SPEC)
    folder = tmp_path / "out"
    folder.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "generate", str(spec), "-o", str(folder / "day.log"),
                             "-q", "--var", "rate=2000"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300  # a safety net for a hung run, not a measurement
    try:
        while proc.poll() is None and time.monotonic() < deadline and not _writing(folder):
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, err
    said = err.strip().splitlines()
    assert len(said) == 1 and "Traceback" not in err, err
    assert said[0].startswith(f"sshsim: interrupted by SIGTERM; {folder}/day.log: kept the ") and ".tmp" not in err
    assert sorted(p.name for p in folder.iterdir()) == ["day.log", "day.log.labels.jsonl"]
    log = (folder / "day.log").read_bytes()
    kept = log.count(b"\n")
    assert log.endswith(b"\n") and f"kept the {kept:,} lines written" in said[0]
    labels = (folder / "day.log.labels.jsonl").read_text().splitlines()
    assert all(max(json.loads(x)["lines"]) <= kept for x in labels)
