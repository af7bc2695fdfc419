"""`generate`: a spec in, a labelled log corpus out, with either engine.

    synthetic  each (entry, variant, kind of user) is recorded once against the real sshd; the
               corpus replays those recordings with fresh times, pids, ports, addresses, users
               and fingerprints. Fast: volume costs no sshd time.
    real       every connection of the corpus is its own run against the real sshd (local, or a
               container for another OpenSSH version); times, addresses, ports, pids and
               fingerprints are rewritten the same way afterwards.

Either way every line was written by a real sshd. Output is identical for the same spec and
seed: the plan (times, users, addresses) comes from the seed alone, recordings are reduced to
templates in which nothing of the run is left (see template.py), and line timing comes from the
seeded timing model rather than from the run's clock. At INFO and below that holds for fresh
recordings; at VERBOSE and DEBUG levels sshd's processes race to the log (a few lines change
places from run to run), so identical output there needs the recordings pinned (cache.py).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from simulator.errors import BadInputError, Interrupted, OutputError
from simulator.generate.cache import RecordingCache, job_hash
from simulator.generate.emitter import WRITE_CHUNK, Emitter, template_problem
from simulator.generate.outputs import make_format
from simulator.generate.recorder import SENTINEL_INVALID, SENTINEL_UID, SENTINEL_USER, Job, Recorded, Recorder
from simulator.generate.spec import FORMATS, GenerateSpec, check_lines, check_volume
from simulator.generate.template import Template
from simulator.generate.timeline import Plan, Planned, plan_connections
from simulator.io import check_output, place, temp_beside

Progress = Callable[[str], None]
# A counted step for a progress bar: (step, done, total).
Steps = Callable[[str, float, float], None]


@dataclass
class Result:
    """What a run produced, for the command's summary and for tests."""

    log: Path
    labels: Path
    lines: int
    connections: int
    recordings: int
    engine: str
    seconds: dict[str, float] = field(default_factory=dict)
    outputs: list[tuple[str, Path, Path]] = field(default_factory=list)  # (format, log, labels) each


def labels_path_for(out: Path) -> Path:
    """OUT.labels.jsonl beside OUT."""
    return out.with_name(out.name + ".labels.jsonl")


def parse_formats(text: str) -> list[str]:
    """`syslog,rfc5424,journal-json` -> the formats in order, each once; bad input names the
    unknown one."""
    formats: list[str] = []
    for name in (part.strip() for part in text.split(",")):
        if name not in FORMATS:
            raise BadInputError(f"unknown format {name!r} (one of {', '.join(FORMATS)}; several: "
                                "comma-separated)", key="--format")
        if name not in formats:
            formats.append(name)
    return formats


def output_paths(out: Path, formats: list[str]) -> list[tuple[str, Path, Path]]:
    """(format, log, labels) per format: OUT itself for one format; OUT.FORMAT for each of
    several (day.log.syslog, day.log.rfc5424, ...), each with its labels beside it."""
    out = Path(out)
    if len(formats) == 1:
        return [(formats[0], out, labels_path_for(out))]
    return [(f, out.with_name(f"{out.name}.{f}"), labels_path_for(out.with_name(f"{out.name}.{f}")))
            for f in formats]


def apply_overrides(spec: GenerateSpec, *, seed: int | None = None, engine: str | None = None,
                    target: str | None = None, format: str | None = None,
                    log_level: str | None = None) -> GenerateSpec:
    """Command-line options win over the spec's own values."""
    changes: dict[str, Any] = {}
    if seed is not None:
        changes["seed"] = seed
    if engine is not None:
        changes["engine"] = engine
    if target is not None:
        kind = target.partition(":")[0]
        if kind not in ("local", "docker"):
            raise BadInputError(f"unknown target {target!r}: use 'local', 'local:VERSION' or 'docker[:IMAGE]'",
                                key="--target")
        changes["target"] = target
    if format is not None:
        if format not in FORMATS:
            raise BadInputError(f"unknown format {format!r} (one of {', '.join(FORMATS)})", key="--format")
        changes["format"] = format
    if log_level is not None:
        changes["log_level"] = "DEBUG1" if log_level.upper() == "DEBUG" else log_level.upper()
    if not changes:
        return spec
    spec = replace(spec, **changes)
    if "engine" in changes:
        check_volume(spec)  # the real engine takes fewer connections
        if spec.engine != "real":
            needs = [what for what, used in (("per_source_penalties", spec.per_source_penalties is not None),
                                             ("max_startups", spec.max_startups is not None),
                                             ("bursts' concurrent", any(b.concurrent > 1 for b in spec.bursts)))
                     if used]
            if needs:
                raise BadInputError(f"the spec's {needs[0]} needs the real engine (docs/detection.md)",
                                    file=spec.path, key="--engine")
    return spec


def plan(spec: GenerateSpec) -> Plan:
    """The corpus's connections, from the spec and the seed alone."""
    return plan_connections(spec, spec.seed)


def _job(spec: GenerateSpec, p: Planned | None, entry: Any, variant: int, kind: str, user: str,
         synthetic: bool) -> Job:
    first = spec.users[0]
    if entry.probe is not None:
        key = (entry.name, variant, "probe") if synthetic or p is None else p.id
        return Job(key, entry, entry.variants[variant], "", first.name, first.uid, "probe", False)
    if synthetic:
        if kind == "valid":
            name, sentinel = SENTINEL_USER, True
        elif kind == "invalid":
            name, sentinel = SENTINEL_INVALID, True
        else:
            name, sentinel = kind, False
        return Job((entry.name, variant, kind), entry, entry.variants[variant], name, SENTINEL_USER,
                   SENTINEL_UID, kind, sentinel)
    uids = {u.name: u.uid for u in spec.users}
    valid = user if user in uids else first.name
    return Job(p.id if p is not None else (entry.name, variant, kind), entry, entry.variants[variant], user, valid,
               uids.get(valid, first.uid), kind, False, source_key=p.source if p is not None else None)


def preflight(spec: GenerateSpec, recorder: Recorder, synthetic: bool) -> None:
    """Render every scenario of every entry once, so bad input fails before any sshd starts."""
    for entry in spec.entries():
        for v in range(len(entry.variants)):
            recorder.prepare(_job(spec, None, entry, v, "valid", spec.users[0].name, synthetic))


def generate(spec: GenerateSpec, out: Path, *, force: bool = False, parallel: int = 8,
             progress: Progress | None = None, labels: Path | None = None,
             recordings: Path | None = None, steps: Steps | None = None,
             formats: list[str] | None = None) -> Result:
    """Write the corpus to `out` and its labels beside it (temp files renamed when complete).

    `formats`: several output formats from the one recording (names: output_paths); default
    the spec's. `recordings`: a folder where recordings are kept and reused (see cache.py).
    `steps`: where the counted steps go as (step, done, total) for a progress bar; without it
    they are messages to `progress`, at most one a second.
    """
    out = Path(out)
    outputs = output_paths(out, formats or [spec.format])
    if labels is not None and len(outputs) == 1:
        outputs = [(outputs[0][0], out, labels)]
    for _, log_path, labels_path in outputs:
        check_output(log_path, force)
        check_output(labels_path, force)
    say = progress or (lambda message: None)
    synthetic = spec.engine == "synthetic"
    timings: dict[str, float] = {}

    recorder = Recorder(spec, spec.target, parallel=parallel, synthetic=synthetic,
                        progress=(lambda done, total: steps("recording against the real sshd", done, total))
                        if steps else _throttled(lambda done, total: say(
                            f"recorded {done}/{total} connections against the real sshd")))
    preflight(spec, recorder, synthetic)  # bad input fails here, before anything is said or run
    t0 = time.monotonic()
    planned = plan(spec)
    timings["plan"] = time.monotonic() - t0
    say(f"{len(planned)} connections planned ({spec.engine} engine, seed {spec.seed})")
    jobs, tindex = make_jobs(spec, planned, recorder, synthetic)
    t0 = time.monotonic()
    by_key = record(spec, jobs, recorder, synthetic, recordings, say)
    timings["record"] = time.monotonic() - t0
    templates, tindex = choose_templates(jobs, by_key, tindex)
    check_lines(spec, int(np.asarray([len(t.lines) for t in templates], dtype=np.int64)[tindex].sum()))

    t0 = time.monotonic()
    written = 0
    for name, log_path, labels_path in outputs:
        # each format replays the same templates with the same seed: the same lines, times and labels
        fmt = make_format(name, spec.host, spec.timezone, spec.seed)
        on_progress = _write_progress("writing" if len(outputs) == 1 else f"writing {name}", steps, say)
        emitter = Emitter(spec, fmt, spec.seed, templates, tindex, progress=on_progress)
        write_corpus(emitter, planned, log_path, labels_path, force)
        written = emitter.lines_written
    timings["write"] = time.monotonic() - t0
    return Result(outputs[0][1], outputs[0][2], written, len(planned), len(jobs), spec.engine, timings,
                  outputs=outputs)


def _write_progress(what: str, steps: Steps | None, say: Progress) -> Callable[[float, int], None]:
    """Progress of writing one output: a bar's step, or a message at most once a second."""
    if steps is not None:
        step = "writing the window (%)" if what == "writing" else f"{what} (%)"
        return lambda fraction, lines: steps(step, round(fraction * 100, 1), 100)
    return _throttled(lambda fraction, lines: say(f"{what}: {fraction * 100:.0f}% of the window, {lines} lines"))


def _throttled(report: Callable[[Any, Any], None], every: float = 1.0) -> Callable[[Any, Any], None]:
    """Progress at most once a second, and always the last step (done == total, or 100%)."""
    last = [0.0]

    def call(done: Any, total: Any) -> None:
        now = time.monotonic()
        final = done == total if isinstance(done, int) else done >= 1.0
        if final or now - last[0] >= every:
            last[0] = now
            report(done, total)

    return call


def make_jobs(spec: GenerateSpec, planned: Plan, recorder: Recorder, synthetic: bool) -> tuple[list[Job], np.ndarray]:
    """What to record, and for each planned connection which job's recording it replays.

    Synthetic: one job per (entry, variant, kind of user). Real: one per connection.
    """
    jobs: list[Job] = []
    if synthetic:
        _, first_rows, tindex = np.unique(planned.template_keys(), return_index=True, return_inverse=True)
        rows = first_rows.tolist()
    else:
        tindex = np.arange(len(planned))
        rows = list(range(len(planned)))
    concurrent = [1] * len(planned) if synthetic else burst_concurrency(spec, planned)
    for row in rows:
        p = planned.row(row)
        job = _job(spec, p, p.entry, p.variant, p.user_class, p.user, synthetic)
        job.concurrent = concurrent[row]
        jobs.append(recorder.prepare(job))
    return jobs, np.asarray(tindex, dtype=np.int64).reshape(-1)


def burst_concurrency(spec: GenerateSpec, planned: Plan) -> list[int]:
    """Per planned connection, its burst's `concurrent` (1 outside bursts)."""
    concurrent = {f"{b.name}#{k + 1}": b.concurrent for b in spec.bursts for k in range(b.count)}
    return [concurrent.get(planned.bursts[b], 1) if b >= 0 else 1 for b in planned.burst.tolist()]


def record(spec: GenerateSpec, jobs: list[Job], recorder: Recorder, synthetic: bool, recordings: Path | None,
           say: Progress) -> dict[Any, list[Template]]:
    """Templates per job key: from the recordings folder where there, else from a real sshd run."""
    by_key: dict[Any, list[Template]] = {}
    cache = RecordingCache(recordings) if recordings is not None else None
    missing = jobs
    if cache is not None:
        missing = []
        for job in jobs:
            key = job_hash(job, spec.log_level, spec.target, synthetic)
            got = None if _has_history(job, recorder) else cache.load(key)
            problem = next((p for p in map(template_problem, got) if p), None) if got else None
            if problem:
                say(f"{recordings}: {key}.json: {problem}; recording it again")
                got = None
            if got is None:
                missing.append(job)
                continue
            for tpl in got:  # the entry may have been renamed since
                tpl.entry, tpl.variant = job.entry.name, job.variant.key
            by_key[job.key] = got
    say(f"recording {len(missing)} {'templates' if synthetic else 'connections'} against the {spec.target} sshd "
        f"(LogLevel {spec.log_level})" + (f"; {len(jobs) - len(missing)} from {recordings}" if cache else ""))
    results: list[Recorded] = asyncio.run(recorder.record(missing)) if missing else []
    saved: dict[str, list[Template]] = {}
    for r in results:
        if cache is None or _has_history(r.job, recorder):
            by_key[r.job.key] = r.templates
            continue
        # Jobs that file under one hash share one recording: the first is saved, and every job
        # of that hash replays it now, exactly as a later run that loads it will (at DEBUG
        # levels two recordings of the same thing can differ in line order).
        key = job_hash(r.job, spec.log_level, spec.target, synthetic)
        if key not in saved:
            saved[key] = r.templates
            cache.save(key, r.templates)
        templates = [Template.from_dict(t.to_dict()) for t in saved[key]]
        for tpl in templates:
            tpl.entry, tpl.variant = r.job.entry.name, r.job.variant.key
        by_key[r.job.key] = templates
    return by_key


def _has_history(job: Job, recorder: Recorder) -> bool:
    """Whether what sshd logs for `job` depends on the connections recorded before it in this run
    (its source's earlier ones, under PerSourcePenalties; its burst's, when they hold MaxStartups
    slots): such a recording is made afresh every run and never shared with another job."""
    return job.concurrent > 1 or recorder.penalties


def choose_templates(jobs: list[Job], by_key: dict[Any, list[Template]],
                     tindex: np.ndarray) -> tuple[list[Template], np.ndarray]:
    """One template per job; a scenario of several connections gives several, and the planned
    connections that replay it take them in turn."""
    templates = [by_key[job.key][0] for job in jobs]
    tindex = tindex.copy()
    for j, job in enumerate(jobs):
        options = by_key[job.key]
        if len(options) < 2:
            continue
        indexes = np.asarray([j] + list(range(len(templates), len(templates) + len(options) - 1)), dtype=np.int64)
        templates.extend(options[1:])
        rows = np.flatnonzero(tindex == j)
        tindex[rows] = indexes[np.arange(len(rows)) % len(options)]
    return templates, tindex


def write_corpus(emitter: Emitter, planned: Plan, out: Path, labels: Path, force: bool = False) -> None:
    """Write both files to temporaries beside them; rename them into place when complete.

    A write that fails (a full disk) or a stop (Ctrl-C, SIGTERM) keeps what was complete rather
    than losing the run's work: both files are cut after their last whole line and renamed into
    place (the names the user allowed when the run began), and the error says how much is there.
    Lines go out in time order and a connection's label only after all its lines, so every kept
    label describes lines of the kept log. No temporary file is left either way.
    """
    temps: list[str] = []
    try:
        with ExitStack() as files:
            opened = []
            for path in (out, labels):
                fd, tmp = temp_beside(path)  # O_EXCL in the output's own folder, never through a link
                temps.append(tmp)
                # the descriptor as it is: reopening with "wb" would truncate the new file, and
                # ext4 then writes it back on close (auto_da_alloc), a pause per output
                opened.append(files.enter_context(os.fdopen(fd, "wb", buffering=0)))
            emitter.run(planned, opened[0], opened[1])
        _publish(temps, (out, labels), force)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        kept = _keep_partial(temps, (out, labels), force)
        if kept is None:
            raise OutputError(f"{reason}: nothing of the corpus was written", file=str(out)) from None
        raise OutputError(f"{reason}: {kept}", file=str(out)) from None
    except KeyboardInterrupt:
        kept = _keep_partial(temps, (out, labels), force)
        if kept is None:
            raise
        raise Interrupted(f"{out}: {kept}") from None
    except BaseException:
        _remove(temps)
        raise


def _publish(temps: list[str], targets: tuple[Path, Path], force: bool) -> None:
    """Put the temporaries in place through simulator/io.py (the user's file mode; no overwrite
    without --force, never through a link); the log last, as it completes the pair."""
    for tmp, target in zip(reversed(temps), reversed(targets), strict=True):
        place(tmp, target, force)
    temps.clear()


def _keep_partial(temps: list[str], targets: tuple[Path, Path], force: bool) -> str | None:
    """Cut both temporaries after their last whole line and rename them into place; what was
    kept, in words (None: no whole line, and the temporaries are removed)."""
    try:
        if len(temps) == 2:
            lines = [_cut_to_last_line(tmp) for tmp in temps]
            if lines[0]:
                _publish(temps, targets, force)
                return (f"kept the {lines[0]:,} lines written and the labels of the {lines[1]:,} connections "
                        f"they complete ({targets[1].name}): an incomplete corpus")
    except OSError:
        pass
    _remove(temps)
    return None


def _cut_to_last_line(path: str) -> int:
    """Truncate a file after its last newline; how many lines it keeps (read in pieces: a
    corpus may be large)."""
    lines = end = offset = 0
    with open(path, "r+b") as f:
        while piece := f.read(WRITE_CHUNK):
            lines += piece.count(b"\n")
            last = piece.rfind(b"\n")
            if last >= 0:
                end = offset + last + 1
            offset += len(piece)
        f.truncate(end)
    return lines


def _remove(temps: list[str]) -> None:
    for tmp in temps:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    temps.clear()



__all__ = ["Result", "apply_overrides", "generate", "labels_path_for", "output_paths", "parse_formats", "plan"]
