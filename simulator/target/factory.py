"""Choose a target from its name on the command line or in a scenario (`local`, `local:VERSION`,
`docker:IMAGE`), and which OpenSSH it runs.

Which version runs (docs/local-target.md):
- `--target local:VERSION` runs that upstream build; a scenario's `server.openssh` that names
  another version gives way, with a one-line notice.
- `--target local` (or none) runs the scenario's `server.openssh` when it names one, else the
  system's sshd.
- On a Docker image of the version matrix, `server.openssh` must be the image's version: a
  scenario written for 10.0p1 is an error on debian-12, not a 9.2p1 run judged as 10.0p1.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from simulator.errors import BadInputError
from simulator.target.base import Origin, ServerSpec
from simulator.target.config import owned_override_notice
from simulator.target.notices import say_once


def _where(origin: Origin | None) -> str:
    if origin is None or origin.file is None:
        return "server.openssh"
    return f"server.openssh at {origin.file}" + (f":{origin.line}" if origin.line else "")


def local_version(spec: ServerSpec, asked: str | None) -> str | None:
    """The upstream version the local target runs (None: the system's sshd)."""
    if asked is None:
        return spec.openssh
    # imported here: start-up cost (the version table's loader brings yaml and jsonschema)
    from simulator.builds.versions import is_release

    if not is_release(asked):
        raise BadInputError(f"'local:{asked}': not an OpenSSH release (write it as e.g. local:10.3p1)",
                            key="--target")
    if spec.openssh is not None and spec.openssh != asked:
        say_once(f"sshsim: note: --target local:{asked} runs OpenSSH {asked}, not {spec.openssh} "
                 f"({_where(spec.openssh_origin)})")
    return asked


def check_image_version(spec: ServerSpec, image_version: str | None, image: str) -> None:
    """A scenario's server.openssh on a Docker image: the image's own version, or an error."""
    if spec.openssh is None or image_version is None or image_version == spec.openssh:
        return
    origin = spec.openssh_origin or Origin(key="server.openssh")
    raise BadInputError(f"server.openssh: {spec.openssh}, but the image {image} runs OpenSSH {image_version}; "
                        "use --target local (or local:VERSION) for an upstream build",
                        file=origin.file, line=origin.line, column=origin.column, key=origin.key)


def make_target(spec: ServerSpec, target: str = "local", *, log_path: Path | str | None = None,
                echo: IO[str] | None = None) -> Any:
    """A not-yet-started target object (LocalSshd or DockerSshd) for `spec`.

    An upstream version is built into the cache here, on first use (progress on stderr)."""
    kind, colon, rest = target.partition(":")
    notice = owned_override_notice(spec)
    if kind == "local":
        if colon and not rest:
            raise BadInputError("empty version in --target local:VERSION (e.g. local:10.3p1)", key="--target")
        version = local_version(spec, rest or None)
        sshd = None
        if version is not None:
            # imported here: start-up cost: the build machinery only for an upstream version
            from simulator.builds.build import ensure_sshd

            sshd = str(ensure_sshd(version))
        # imported here: start-up cost: only the chosen target loads (local: asyncssh; docker: the docker SDK)
        from simulator.target.local import LocalSshd

        if notice:
            say_once(notice)
        return LocalSshd(spec, sshd=sshd, log_path=log_path, echo=echo)
    if kind == "docker":
        if spec.config_file is not None:
            raise BadInputError("a user's sshd_config (--sshd-config, server.sshd_config_file) runs on the local "
                                "target only for now", key="--target")
        # imported here: start-up cost: only the chosen target loads (local: asyncssh; docker: the docker SDK)
        from simulator.target import images
        from simulator.target.docker import docker_target

        reference, info = images.resolve(rest or None)
        check_image_version(spec, info.openssh if info else None, reference)
        if notice:
            say_once(notice)
        return docker_target(spec, rest or "debian-12", log_path=log_path, echo=echo)
    raise BadInputError(f"unknown target {target!r}: use 'local', 'local:VERSION' or 'docker[:IMAGE]'")
