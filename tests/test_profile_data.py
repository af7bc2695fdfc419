"""Checks of the client profile data files alone (no network, no sshd).

Every profile loads, has the schema's keys with sane values, its `hassh` is the md5 of its own
name-lists, and where a fingerprint was measured (docs/client-fingerprints.md) the profile matches it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROFILE_DIR = ROOT / "simulator" / "data" / "profiles"

EXPECTED_PROFILES = {
    "motty-0.80",
    "putty-0.80",
    "winscp-6.3",
    "secureblackbox",
    "openssh-8.9",
    "openssh-9.2-debian",
    "openssh-9.6",
    "openssh-9.9",
    "openssh-10.2",
    "paramiko-3.4",
    "paramiko-5.1",
    "go-x-crypto-ssh",
    "asyncssh-2.24.1",
}

# Measured on the wire (docs/client-fingerprints.md). OpenSSH 9.6 sends the same lists as 9.7 (checked
# against openssh-portable V_9_6_P1 / V_9_7_P1), so the 9.7 measurement applies to it.
MEASURED_HASSH = {
    "putty-0.80": "1dd4d89cd6b7a1f7b06acf808260c130",
    "openssh-9.2-debian": "472b5de333ad665af5cbf10ff892c4df",
    "openssh-9.6": "aae6b9604f6f3356543709a376d7f657",  # measured as OpenSSH 9.7
    "openssh-9.9": "0babd4b68a5f3757987be75fe35ad60a",
    "openssh-10.2": "eeca2460550b9ded084ecf2f70a75356",
    "paramiko-3.4": "87e3d9ffee0540b0390f8a5b9c343c08",
    "paramiko-5.1": "4c94058d5e9e31659879f79fd5b46084",
    "asyncssh-2.24.1": "c70169683f416ecb6afc5aed972ec23c",
}

REQUIRED_TOP = {
    "name": str,
    "client": str,
    "version": str,
    "banner": str,
    "sources": list,
    "guess": list,
    "kex": list,
    "host_key": list,
    "encryption": list,
    "mac": list,
    "compression": list,
    "hassh": str,
    "auth": dict,
    "channel": dict,
    "session": dict,
    "close": str,
}
OPTIONAL_TOP = {
    "encryption_s2c": list,
    "mac_s2c": list,
    "compression_s2c": list,
    "sftp": dict,
    "disconnect": dict,
    "kex_with_liboqs": list,
    "hassh_with_liboqs": str,
    "hassh_without_mlkem": str,
}
NAME_LIST_KEYS = ("kex", "host_key", "encryption", "mac", "compression",
                  "encryption_s2c", "mac_s2c", "compression_s2c", "kex_with_liboqs")
# Signalling names that are not algorithms: they belong in the kex list only.
KEX_PSEUDO = {"ext-info-c", "kex-strict-c-v00@openssh.com"}
UINT32_MAX = 2**32 - 1


def hassh(kex: list[str], enc: list[str], mac: list[str], comp: list[str]) -> str:
    text = ";".join(",".join(names) for names in (kex, enc, mac, comp))
    return hashlib.md5(text.encode("ascii")).hexdigest()


def load(path: Path) -> dict:
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict), f"{path.name}: top level is not a mapping"
    return data


PROFILE_PATHS = sorted(PROFILE_DIR.glob("*.yaml"))
PROFILES = {p.stem: load(p) for p in PROFILE_PATHS}


def test_every_expected_profile_exists() -> None:
    assert EXPECTED_PROFILES <= set(PROFILES), sorted(EXPECTED_PROFILES - set(PROFILES))


def test_readme_documents_every_key() -> None:
    readme = (PROFILE_DIR / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([a-z0-9_]+(?:\.[a-z0-9_]+)?)`", readme))
    used: set[str] = set()
    for data in PROFILES.values():
        for key, value in data.items():
            if isinstance(value, dict):
                # want_reply maps request names, not schema keys
                used.update(f"{key}.{sub}" for sub in value)
            else:
                used.add(key)
    missing = sorted(k for k in used if k not in documented)
    assert not missing, f"keys used by profiles but not in README.md: {missing}"


@pytest.fixture(params=sorted(PROFILES), ids=sorted(PROFILES))
def profile(request: pytest.FixtureRequest) -> dict:
    return PROFILES[request.param]


def test_name_is_file_stem(profile: dict) -> None:
    stems = [stem for stem, data in PROFILES.items() if data is profile]
    assert profile["name"] == stems[0]


def test_keys_and_types(profile: dict) -> None:
    for key, kind in REQUIRED_TOP.items():
        assert key in profile, f"missing {key}"
        assert isinstance(profile[key], kind), f"{key} is {type(profile[key]).__name__}, want {kind.__name__}"
    unknown = set(profile) - set(REQUIRED_TOP) - set(OPTIONAL_TOP)
    assert not unknown, f"unknown keys {sorted(unknown)}"
    for key, kind in OPTIONAL_TOP.items():
        if key in profile:
            assert isinstance(profile[key], kind), f"{key} is {type(profile[key]).__name__}"
    assert profile["sources"] and all(isinstance(s, str) and s.strip() for s in profile["sources"])


def test_banner_is_a_valid_software_version(profile: dict) -> None:
    banner = profile["banner"]
    # "SSH-2.0-" + banner + CR LF must fit in the 255-character identification line.
    assert banner and len("SSH-2.0-" + banner) <= 253
    assert all(33 <= ord(ch) <= 126 or ch == " " for ch in banner)
    assert not banner.startswith(" ") and "-" not in banner.split(" ")[0], \
        "the softwareversion part may not contain '-' (RFC 4253 4.2)"


def test_name_lists_are_well_formed(profile: dict) -> None:
    for key in NAME_LIST_KEYS:
        if key not in profile:
            continue
        names = profile[key]
        assert names, f"{key} is empty"
        assert all(isinstance(n, str) for n in names), f"{key}: non-string entry"
        assert len(set(names)) == len(names), f"{key}: duplicate names"
        for n in names:
            assert re.fullmatch(r"[\x21-\x7e]{1,64}", n) and "," not in n, f"{key}: bad name {n!r}"
        if not key.startswith("kex"):
            assert not KEX_PSEUDO & set(names), f"{key}: kex signalling name outside kex"
    for key in ("kex", "kex_with_liboqs"):
        if key in profile:
            real = [n for n in profile[key] if n not in KEX_PSEUDO]
            assert real, f"{key} has no real key exchange method"


def test_hassh_matches_lists(profile: dict) -> None:
    computed = hassh(profile["kex"], profile["encryption"], profile["mac"], profile["compression"])
    assert re.fullmatch(r"[0-9a-f]{32}", profile["hassh"])
    assert profile["hassh"] == computed, f"hassh field {profile['hassh']} != computed {computed}"


def test_variant_hasshes_match_lists(profile: dict) -> None:
    enc, mac, comp = profile["encryption"], profile["mac"], profile["compression"]
    if "kex_with_liboqs" in profile or "hassh_with_liboqs" in profile:
        assert profile["hassh_with_liboqs"] == hassh(profile["kex_with_liboqs"], enc, mac, comp)
    if "hassh_without_mlkem" in profile:
        kex = [n for n in profile["kex"] if not n.startswith("mlkem")]
        assert kex != profile["kex"], "hassh_without_mlkem given but kex has no mlkem entry"
        assert profile["hassh_without_mlkem"] == hassh(kex, enc, mac, comp)


@pytest.mark.parametrize("name", sorted(MEASURED_HASSH))
def test_hassh_equals_measured_value(name: str) -> None:
    assert PROFILES[name]["hassh"] == MEASURED_HASSH[name]


def test_guess_names_real_keys(profile: dict) -> None:
    allowed = set(REQUIRED_TOP) | set(OPTIONAL_TOP)
    assert all(isinstance(g, str) for g in profile["guess"])
    assert set(profile["guess"]) <= allowed, sorted(set(profile["guess"]) - allowed)
    assert "hassh" not in profile["guess"] or profile["name"] not in MEASURED_HASSH


def test_auth(profile: dict) -> None:
    auth = profile["auth"]
    assert isinstance(auth.get("none_first"), bool)
    assert isinstance(auth.get("publickey_query"), bool)
    assert set(auth) <= {"none_first", "publickey_query", "signed_method"}
    if "signed_method" in auth:
        assert auth["signed_method"].startswith("publickey")


def _check_window(block: dict, where: str, window: str = "window", packet: str = "max_packet") -> None:
    assert isinstance(block[window], int) and 0 < block[window] <= UINT32_MAX, f"{where}.{window}"
    assert isinstance(block[packet], int) and 0 < block[packet] <= UINT32_MAX, f"{where}.{packet}"


def test_channel(profile: dict) -> None:
    channel = profile["channel"]
    assert set(channel) <= {"first_id", "window", "max_packet", "no_pty_window",
                            "no_pty_max_packet", "window_adjust_request"}
    assert isinstance(channel["first_id"], int) and 0 <= channel["first_id"] <= UINT32_MAX
    _check_window(channel, "channel")
    if "no_pty_window" in channel:
        _check_window(channel, "channel", "no_pty_window", "no_pty_max_packet")


def test_session(profile: dict) -> None:
    session = profile["session"]
    assert set(session) <= {"requests", "pipelined", "want_reply", "request_order", "global_requests"}
    requests = session["requests"]
    assert requests and all(isinstance(r, str) for r in requests)
    assert isinstance(session["pipelined"], bool)
    want = session["want_reply"]
    assert all(isinstance(k, str) and isinstance(v, bool) for k, v in want.items())
    assert set(requests) <= set(want), f"no want_reply for {sorted(set(requests) - set(want))}"
    if "request_order" in session:
        order = session["request_order"]
        # the default requests are a subsequence of the full order
        positions = [order.index(r) for r in requests]
        assert positions == sorted(positions), "requests out of request_order's order"
        assert set(order) <= set(want)
    for name in session.get("global_requests", []):
        assert isinstance(name, str) and name


def test_sftp(profile: dict) -> None:
    if "sftp" not in profile:
        return
    sftp = profile["sftp"]
    assert set(sftp) <= {"window", "max_packet", "requests", "want_reply"}
    _check_window(sftp, "sftp")
    assert "subsystem" in sftp.get("requests", ["subsystem"])


def test_close(profile: dict) -> None:
    assert profile["close"] in ("drop-tcp", "disconnect")
    if profile["close"] == "disconnect":
        disc = profile["disconnect"]
        assert set(disc) == {"code", "text"}
        assert isinstance(disc["code"], int) and 1 <= disc["code"] <= 15
        assert isinstance(disc["text"], str)
    else:
        assert "disconnect" not in profile


def test_seed_facts_for_the_reference_log_clients() -> None:
    """The two clients of the reference log reproduce what the seed shows."""
    motty, sbb = PROFILES["motty-0.80"], PROFILES["secureblackbox"]
    assert motty["banner"] == "MoTTY_Release_0.80"
    assert {"ext-info-c", "kex-strict-c-v00@openssh.com"} <= set(motty["kex"])
    assert motty["channel"] == {**motty["channel"], "first_id": 256, "window": 16384, "max_packet": 16384}
    assert motty["session"]["requests"] == ["x11-req", "pty-req", "shell"]
    assert sbb["banner"] == "SecureBlackbox"
    assert not KEX_PSEUDO & set(sbb["kex"])
    assert (sbb["channel"]["first_id"], sbb["channel"]["window"], sbb["channel"]["max_packet"]) == (1, 32768, 262144)
    assert sbb["session"]["requests"] == ["subsystem"]


# The seed server (OpenSSH 8.9p1 Ubuntu) offered these; the first client entry it also has must
# be what the seed log shows negotiated.
SEED_SERVER = {
    "kex": ["curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256",
            "ecdh-sha2-nistp384", "ecdh-sha2-nistp521", "sntrup761x25519-sha512@openssh.com",
            "diffie-hellman-group-exchange-sha256", "diffie-hellman-group16-sha512",
            "diffie-hellman-group18-sha512", "diffie-hellman-group14-sha256"],
    "host_key": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa", "ecdsa-sha2-nistp256", "ssh-ed25519"],
    "encryption": ["chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr",
                   "aes128-gcm@openssh.com", "aes256-gcm@openssh.com"],
    "mac": ["umac-64-etm@openssh.com", "umac-128-etm@openssh.com", "hmac-sha2-256-etm@openssh.com",
            "hmac-sha2-512-etm@openssh.com", "hmac-sha1-etm@openssh.com", "umac-64@openssh.com",
            "umac-128@openssh.com", "hmac-sha2-256", "hmac-sha2-512", "hmac-sha1"],
    "compression": ["none", "zlib@openssh.com"],
}
SEED_NEGOTIATED = {
    "motty-0.80": {"kex": "sntrup761x25519-sha512@openssh.com", "host_key": "ssh-ed25519",
                   "encryption": "aes256-ctr", "mac": "hmac-sha2-256", "compression": "zlib@openssh.com"},
    "secureblackbox": {"kex": "diffie-hellman-group-exchange-sha256", "host_key": "ssh-ed25519",
                       "encryption": "aes256-ctr", "mac": "hmac-sha1", "compression": "none"},
}


@pytest.mark.parametrize("name", sorted(SEED_NEGOTIATED))
def test_lists_negotiate_what_the_seed_shows(name: str) -> None:
    for key, expected in SEED_NEGOTIATED[name].items():
        chosen = next(n for n in PROFILES[name][key] if n in SEED_SERVER[key])
        assert chosen == expected, f"{name} {key}: would negotiate {chosen}, the seed shows {expected}"
