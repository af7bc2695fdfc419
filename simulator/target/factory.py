"""Choose a target from its name on the command line or in a scenario (`local`, `docker:IMAGE`)."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from simulator.errors import BadInputError
from simulator.target.base import ServerSpec


def make_target(spec: ServerSpec, target: str = "local", *, log_path: Path | str | None = None,
                echo: IO[str] | None = None) -> Any:
    """A not-yet-started target object (LocalSshd or DockerSshd) for `spec`."""
    kind, _, image = target.partition(":")
    if kind == "local":
        if image:
            raise BadInputError(f"target 'local' takes no image (got {target!r})")
        # imported here: start-up cost: only the chosen target loads (local: asyncssh; docker: the docker SDK)
        from simulator.target.local import LocalSshd

        return LocalSshd(spec, log_path=log_path, echo=echo)
    if kind == "docker":
        if spec.config_file is not None:
            raise BadInputError("a user's sshd_config (--sshd-config, server.sshd_config_file) runs on the local "
                                "target only for now", key="--target")
        # imported here: start-up cost: only the chosen target loads (local: asyncssh; docker: the docker SDK)
        from simulator.target.docker import docker_target

        return docker_target(spec, image or "debian-12", log_path=log_path, echo=echo)
    raise BadInputError(f"unknown target {target!r}: use 'local' or 'docker[:IMAGE]'")
