"""A learned profile as a YAML file that validates against the profile schema and loads."""

from __future__ import annotations

import re

import yaml

from simulator.learn.merge import Learned
from simulator.profiles import ClientProfile, parse_profile, profile_from_data


def default_name(banner: str) -> str:
    """A profile name from a banner: "OpenSSH_9.2p1 Debian-2" -> "openssh-9.2p1-debian-2"."""
    name = re.sub(r"[^A-Za-z0-9.+-]+", "-", banner.replace("_", "-")).strip("-.").lower()
    return name[:64] or "learned"


def to_yaml(learned: Learned) -> str:
    """The profile file: a header naming its source, conflicts and what no key expresses."""
    data = learned.data
    head = [f"# {data['name']}: {data['learned']['source']} (sshsim learn).",
            "# Keys under `unobserved` were not shown by the recorded sessions: their values are defaults."]
    for conflict in learned.conflicts:
        head.append(f"# CONFLICT (first session's value kept): {conflict}")
    body = yaml.safe_dump(data, sort_keys=False, width=110, allow_unicode=True, default_flow_style=False)
    return "\n".join(head) + "\n" + body


def validate(text: str, where: str) -> ClientProfile:
    """The written text parsed and loaded as any profile file is (schema, `when:` entries)."""
    data = parse_profile(text, where)
    return profile_from_data(data.get("name", "learned"), data)
