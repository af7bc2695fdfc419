"""Targets: the sshd a scenario runs against (a private local one, or one in a container)."""

from simulator.target.base import ServerSpec, UserSpec

__all__ = ["ServerSpec", "UserSpec"]
