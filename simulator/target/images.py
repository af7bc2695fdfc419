"""The sshd test images: which names exist, where their Dockerfiles are, and building them.

`--target docker:debian-13` names an image of the version matrix, kept as data in
simulator/data/docker/images.yaml (checked against simulator/schema/images.schema.json);
anything else is taken as an image reference the user built or pulled (it must follow the same
entrypoint contract, see docker/sshsim-entrypoint.sh). A matrix image that is missing is built from `docker/`; one
whose build files changed since it was built is rebuilt, so an edited entrypoint never runs
stale. Everything here talks to the engine through the `docker` SDK client it is given.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from simulator.errors import BadInputError, EnvironmentProblem, TargetError
from simulator.progress import status
from simulator.shipped import shipped
from simulator.yamlread import load_yaml_with_positions, schema_error

TAG_PREFIX = "sshsim-sshd"
# A label holding a digest of the build files, to tell a current image from a stale one.
CONTEXT_LABEL = "sshsim.context"
# The files of docker/ that go into every image.
CONTEXT_FILES = ("sshsim-entrypoint.sh", "rsyslog.conf")
# The image matrix, as data (adding a distribution: an entry there and its Dockerfile).
IMAGES_DATA = "docker/images.yaml"


@dataclass(frozen=True)
class ImageInfo:
    """One image of the version matrix (an entry of simulator/data/docker/images.yaml)."""

    name: str
    base: str
    openssh: str
    # Where the base comes from: podman-engine.sh imports the Debian ones from Debian's archive;
    # the Ubuntu ones need a reachable registry.
    needs_registry: bool
    aliases: tuple[str, ...] = ()

    @property
    def dockerfile(self) -> str:
        return f"Dockerfile.{self.name}"

    @property
    def tag(self) -> str:
        return f"{TAG_PREFIX}:{self.name}"


def load_matrix(text: str, path: str = IMAGES_DATA) -> tuple[str, dict[str, ImageInfo]]:
    """(default image, images by name) from the YAML of the matrix, checked against its schema
    and for what a schema cannot say (the default is an image, no name means two images)."""
    data, positions = load_yaml_with_positions(text, path)
    schema = json.loads(resources.files("simulator.schema").joinpath("images.schema.json").read_text())
    problem = schema_error(data, positions, path, schema)
    if problem is not None:
        raise problem
    matrix = {
        name: ImageInfo(name, entry["base"], entry["openssh"], entry["needs_registry"],
                        tuple(entry.get("aliases", ())))
        for name, entry in data["images"].items()
    }
    def at(*where: str | int) -> str:
        file, line, column = positions.get(where) or (path, 0, 0)
        return f"{file}:{line}:{column}" if line else file

    seen: dict[str, str] = {name: name for name in matrix}
    for info in matrix.values():
        for index, alias in enumerate(info.aliases):
            if alias in seen:
                raise BadInputError(f"{at('images', info.name, 'aliases', index)}: images.{info.name}.aliases: "
                                    f"{alias!r} already names {seen[alias]}")
            seen[alias] = info.name
    if data["default"] not in matrix:
        raise BadInputError(f"{at('default')}: default: {data['default']!r} is not one of the images "
                            f"({', '.join(matrix)})")
    return data["default"], matrix


def _shipped_matrix() -> tuple[str, dict[str, ImageInfo]]:
    source = resources.files("simulator.data").joinpath(IMAGES_DATA)
    try:
        return load_matrix(source.read_text())
    except BadInputError as exc:
        raise RuntimeError(f"shipped image matrix is invalid: {exc}") from None  # a bug: exit 3


DEFAULT_IMAGE, IMAGES = _shipped_matrix()
ALIASES = {alias: info.name for info in IMAGES.values() for alias in info.aliases}


def resolve(image: str | None) -> tuple[str, ImageInfo | None]:
    """(image reference to run, matrix entry or None) for what the user wrote after `docker:`."""
    name = (image or DEFAULT_IMAGE).strip()
    if not name:
        raise BadInputError("empty image name in --target docker:IMAGE")
    name = ALIASES.get(name, name)
    if name in IMAGES:
        return IMAGES[name].tag, IMAGES[name]
    if name.startswith(f"{TAG_PREFIX}:") and name.split(":", 1)[1] in IMAGES:
        info = IMAGES[name.split(":", 1)[1]]
        return info.tag, info
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*", name):
        raise BadInputError(f"{name!r} is not an image name; known images: {', '.join(IMAGES)}")
    return name, None


def docker_dir() -> Path | None:
    """The build context ($SSHSIM_DOCKER_DIR, else the shipped docker/: simulator/shipped.py), if present."""
    override = os.environ.get("SSHSIM_DOCKER_DIR")
    candidates = [Path(override)] if override else []
    own = shipped("docker")
    if own is not None:
        candidates.append(own)
    for candidate in candidates:
        if (candidate / "sshsim-entrypoint.sh").is_file():
            return candidate
    return None


def context_digest(context: Path, info: ImageInfo) -> str:
    """Digest of what a build of `info` reads, so a changed entrypoint triggers a rebuild."""
    digest = hashlib.sha256()
    for name in (info.dockerfile, *CONTEXT_FILES):
        digest.update(name.encode() + b"\0" + (context / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def ensure_image(client: Any, image: str | None, *, build: bool = True) -> str:
    """Return the reference of a present, current image; build a matrix image when needed."""
    # imported here: optional extra: the docker SDK only for --target docker
    import docker.errors


    ref, info = resolve(image)
    present = _get(client, ref)
    if info is None:
        if present is None:
            raise EnvironmentProblem(
                f"image {ref} is not on this Docker engine and sshsim has no Dockerfile for it "
                f"(its own images: {', '.join(IMAGES)}); build or pull it first"
            )
        return ref
    context = docker_dir()
    if context is None:
        if present is not None:
            return ref
        raise EnvironmentProblem(
            f"image {ref} is missing and its Dockerfile is not here (docker/ of the sshsim source "
            "tree or of its install, or set SSHSIM_DOCKER_DIR): build it with "
            f"'docker build -t {ref} -f docker/{info.dockerfile} docker/'"
        )
    digest = context_digest(context, info)
    if present is not None and (present.labels or {}).get(CONTEXT_LABEL) == digest:
        return ref
    if not build:
        state = "missing" if present is None else "out of date"
        raise EnvironmentProblem(f"image {ref} is {state} and building was not allowed")
    with _build_lock(context):
        present = _get(client, ref)  # another process may have built it meanwhile
        if present is not None and (present.labels or {}).get(CONTEXT_LABEL) == digest:
            return ref
        try:
            with status(f"building image {ref} from docker/{info.dockerfile} (once per Dockerfile change)"):
                client.images.build(
                    path=str(context),
                    dockerfile=info.dockerfile,
                    tag=ref,
                    labels={CONTEXT_LABEL: digest},
                    # Package downloads use the host's network; nothing else does.
                    network_mode="host",
                    pull=False,
                    rm=True,
                    forcerm=True,
                )
        except docker.errors.BuildError as exc:
            raise TargetError(build_failure(info, exc.msg, exc.build_log)) from None
        except docker.errors.APIError as exc:
            raise TargetError(f"building {ref} failed: {_one_line(str(exc))}") from None
        if present is not None:
            _remove_if_untagged(client, present.id)
    return ref


def _remove_if_untagged(client: Any, image_id: str) -> None:
    """Drop the image a rebuild replaced, unless something else still uses it (disk adds up)."""
    # imported here: optional extra: the docker SDK only for --target docker
    import docker.errors

    try:
        if not client.images.get(image_id).tags:
            client.images.remove(image_id)
    except docker.errors.APIError:
        pass  # in use by a container, or already gone: leave it to the engine's own pruning


def build_failure(info: ImageInfo, message: str, build_log: Any) -> str:
    """One line naming the step that failed and why (the engine's log is long)."""
    step = ""
    tail: list[str] = []
    for entry in build_log or ():
        text = entry.get("stream", "") if isinstance(entry, dict) else str(entry)
        for line in text.splitlines():
            if re.match(r"(?i)^step \d+/\d+ ?:", line.strip()):
                step = line.strip()
                tail = []
            elif line.strip():
                tail.append(line.strip())
    reason = _one_line(message) or (tail[-1] if tail else "unknown error")
    hint = ""
    if re.search(r"(?i)step 1/\d+ ?: ?from", step) or "initializing source" in reason:
        hint = (
            f" (the base image {info.base} is not on this engine and cannot be pulled"
            + ("; the Ubuntu images build where a registry is reachable)" if info.needs_registry
               else "; docker/podman-engine.sh imports the Debian bases from Debian's archive)")
        )
    where = f" at {_shorten(step)}" if step else ""
    return f"building {info.tag} from docker/{info.dockerfile} failed{where}: {reason}{hint}"


def _get(client: Any, ref: str) -> Any:
    # imported here: optional extra: the docker SDK only for --target docker
    import docker.errors

    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


class _build_lock:
    """One build at a time across processes (parallel test workers, two shells).

    The lock is taken on the build context directory itself, so no lock file is left behind.
    """

    def __init__(self, context: Path) -> None:
        self.context = context
        self.fd: int | None = None

    def __enter__(self) -> _build_lock:
        self.fd = os.open(self.context, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _shorten(text: str, limit: int = 120) -> str:
    text = _one_line(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
