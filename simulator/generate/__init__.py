"""`sshsim generate`: realistic, labelled sshd log corpora, every line from a real sshd run.

    from simulator.generate import load_spec, generate
    result = generate(load_spec("scenarios/generate/bruteforce-mix.yaml"), Path("day.log"))

Modules: `spec` (reading and checking specs), `timeline` (when connections start, who makes them),
`addresses` (addresses, ports, pids, fingerprints), `recorder` and `probes` (real sshd runs),
`template` (recorded connections with their run-specific values as slots, timing, labels),
`emitter` and `outputs` (replaying templates into the output formats, fast), `engine` (the
synthetic and real engines end to end).
"""

from simulator.generate.engine import (
    Result,
    apply_overrides,
    generate,
    labels_path_for,
    output_paths,
    parse_formats,
    plan,
)
from simulator.generate.spec import GenerateSpec, load_spec

__all__ = ["GenerateSpec", "Result", "apply_overrides", "generate", "labels_path_for", "load_spec", "output_paths",
           "parse_formats", "plan"]
