"""Checks of the client profile data files alone (no network, no sshd).

Every profile passes the shipped JSON Schema (the product's own loader reads it), has sane
values beyond what a schema can say, its `hassh` is the md5 of its own name-lists, and a
misspelt key in a profile file or a scenario's override is a file:line:column error, exit 2.
The measured fingerprints are read from the profile files (`hassh_measured`), never repeated here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.errors import BadInputError
from simulator.kex.kexinit import hassh
from simulator.profiles import known_profiles, load_profile, parse_profile, profile_schema

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
# Clients whose fingerprint was measured on the wire (the values live in the profile files).
EXPECTED_MEASURED = {"putty-0.80", "openssh-9.2-debian", "openssh-9.6", "openssh-9.9", "openssh-10.2",
                     "paramiko-3.4", "paramiko-5.1", "asyncssh-2.24.1", "plink-0.78", "psftp-0.78"}

NAME_LIST_KEYS = ("kex", "host_key", "encryption", "mac", "compression", "kex_with_liboqs")
# Signalling names that are not algorithms: they belong in the kex list only.
KEX_PSEUDO = {"ext-info-c", "kex-strict-c-v00@openssh.com"}


def load(path: Path) -> dict:
    """A profile file as the product reads it: schema-checked, errors with file:line:column."""
    return parse_profile(path.read_text(encoding="utf-8"), str(path))


PROFILE_PATHS = sorted(PROFILE_DIR.glob("*.yaml"))
PROFILES = {p.stem: load(p) for p in PROFILE_PATHS}
MEASURED = {name: data["hassh"] for name, data in PROFILES.items() if "hassh_measured" in data}
SCHEMA = profile_schema()


def sshsim(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env=env)


def test_every_expected_profile_exists() -> None:
    assert EXPECTED_PROFILES <= set(PROFILES), sorted(EXPECTED_PROFILES - set(PROFILES))
    assert set(PROFILES) == set(known_profiles())


def test_measured_profiles_say_so() -> None:
    assert set(MEASURED) == EXPECTED_MEASURED


def test_schema_describes_every_key() -> None:
    """Each key is documented once, in the schema; the profiles README points there."""

    def walk(node: dict, at: str) -> list[str]:
        missing = []
        for key, sub in node.get("properties", {}).items():
            if not sub.get("description"):
                missing.append(at + key)
            missing += walk(sub, f"{at}{key}.")
        return missing

    assert not walk(SCHEMA, "")
    assert "profile.schema.json" in (PROFILE_DIR / "README.md").read_text(encoding="utf-8")


def test_schema_command_prints_the_profile_schema() -> None:
    out = sshsim("schema", "--profile")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == SCHEMA


def _misspelt_copy(tmp_path: Path, old: str, new: str) -> Path:
    text = (PROFILE_DIR / "putty-0.80.yaml").read_text(encoding="utf-8")
    assert text.count(old) == 1
    path = tmp_path / "putty-0.80.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def test_misspelt_key_in_a_profile_file_is_placed(tmp_path: Path) -> None:
    path = _misspelt_copy(tmp_path, "  publickey_query: true\n", "  publickey_qurey: true\n")
    line = next(n for n, row in enumerate(path.read_text().splitlines(), 1) if "publickey_qurey" in row)
    with pytest.raises(BadInputError) as caught:
        load(path)
    assert str(caught.value) == (f"{path}:{line}:3: auth.publickey_qurey: unknown key 'publickey_qurey' "
                                 "(did you mean 'publickey_query'?)")


def test_wrong_type_in_a_profile_file_is_placed(tmp_path: Path) -> None:
    path = _misspelt_copy(tmp_path, "  first_id: 256\n", "  first_id: -1\n")
    line = next(n for n, row in enumerate(path.read_text().splitlines(), 1) if "first_id: -1" in row)
    with pytest.raises(BadInputError) as caught:
        load(path)
    assert str(caught.value) == f"{path}:{line}:13: channel.first_id: -1 is less than the minimum, 0"


def test_unknown_top_level_key_in_a_profile_file(tmp_path: Path) -> None:
    path = _misspelt_copy(tmp_path, "close: drop-tcp", "close: drop-tcp\nclose_mode: drop")
    line = next(n for n, row in enumerate(path.read_text().splitlines(), 1) if row.startswith("close_mode"))
    with pytest.raises(BadInputError) as caught:
        load(path)
    assert str(caught.value) == f"{path}:{line}:1: close_mode: unknown key 'close_mode' (did you mean 'close'?)"


SCENARIO = """\
name: override
connections:
  - id: a
    profile:
      base: putty-0.80
      channel:
        first_id: 3
        {key}: {value}
"""


@pytest.mark.parametrize("key, value, message", [
    ("windw", "100", "connections[0].profile.channel.windw: unknown key 'windw' (did you mean 'window'?)"),
])
def test_scenario_override_key_is_a_placed_error_exit_2(tmp_path: Path, key: str, value: str,
                                                        message: str) -> None:
    scenario = tmp_path / "override.yaml"
    scenario.write_text(SCENARIO.format(key=key, value=value), encoding="utf-8")
    out = sshsim("verify", str(ROOT / "tests" / "data" / "local" / "sshd-9.2-info.log"), str(scenario))
    assert out.returncode == 2
    assert out.stderr.strip() == f"sshsim: error: {scenario}:8:9: {message}"


def test_scenario_override_in_flow_style_and_a_good_one(tmp_path: Path) -> None:
    from simulator.scenario import load_scenario

    scenario = tmp_path / "flow.yaml"
    scenario.write_text("connections:\n  - id: a\n    profile: {base: paramiko-3.4, auth: {none_frist: true}}\n")
    with pytest.raises(BadInputError) as caught:
        load_scenario(str(scenario))
    assert str(caught.value) == (f"{scenario}:3:42: connections[0].profile.auth.none_frist: unknown key "
                                 "'none_frist' (did you mean 'none_first'?)")
    scenario.write_text("connections:\n  - id: a\n    profile: {base: putty-0.80, channel: {first_id: 7}}\n")
    plan = load_scenario(str(scenario)).connections[0]
    profile = load_profile(plan.profile)
    assert (profile.first_channel, profile.window, profile.banner) == (7, 16384, "PuTTY_Release_0.80")


def test_override_built_in_code_is_checked_too() -> None:
    with pytest.raises(BadInputError, match=r"^banr: unknown key 'banr' \(did you mean 'banner'\?\)$"):
        load_profile({"base": "putty-0.80", "banr": "x"})
    # Every key is performed, so a scenario may set any: PuTTY's window request on paramiko.
    profile = load_profile({"base": "paramiko-3.4", "channel": {"window_adjust_request": "winadj@x"}})
    assert profile.window_adjust_request == "winadj@x"
    assert load_profile("paramiko-3.4").window_adjust_request is None
    assert load_profile("plink-0.78").window_adjust_request == "winadj@putty.projects.tartarus.org"


@pytest.fixture(params=sorted(PROFILES), ids=sorted(PROFILES))
def profile(request: pytest.FixtureRequest) -> dict:
    return PROFILES[request.param]


def test_name_is_file_stem(profile: dict) -> None:
    stems = [stem for stem, data in PROFILES.items() if data is profile]
    assert profile["name"] == stems[0]


def test_sources_are_not_blank(profile: dict) -> None:
    assert all(s.strip() for s in profile["sources"])


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


@pytest.mark.parametrize("name", sorted(EXPECTED_MEASURED))
def test_measured_hassh_is_what_the_lists_give(name: str) -> None:
    """A measured value may not drift from the lists: editing one without the other fails here."""
    data = PROFILES[name]
    assert "hassh" not in data["guess"]
    assert MEASURED[name] == hassh(data["kex"], data["encryption"], data["mac"], data["compression"])


def test_guess_names_real_keys(profile: dict) -> None:
    allowed = set(SCHEMA["properties"])
    assert set(profile["guess"]) <= allowed, sorted(set(profile["guess"]) - allowed)


def test_auth(profile: dict) -> None:
    auth = profile["auth"]
    # OpenSSH's hostbound request is signed only; a client with it always queries first.
    if "signed_method" in auth:
        assert auth["publickey_query"] and auth["signed_method"] != "publickey"


def test_channel(profile: dict) -> None:
    channel = profile["channel"]
    # Window and packet size for sessions without a pty come as a pair.
    assert ("no_pty_window" in channel) == ("no_pty_max_packet" in channel)


def test_session(profile: dict) -> None:
    session = profile["session"]
    requests = session["requests"]
    want = session["want_reply"]
    assert set(requests) <= set(want), f"no want_reply for {sorted(set(requests) - set(want))}"
    if "request_order" in session:
        order = session["request_order"]
        # the default requests are a subsequence of the full order
        positions = [order.index(r) for r in requests]
        assert positions == sorted(positions), "requests out of request_order's order"
        assert set(order) <= set(want)


def test_sftp(profile: dict) -> None:
    if "sftp" not in profile:
        return
    sftp = profile["sftp"]
    assert "subsystem" in sftp.get("requests", ["subsystem"])
    wanted = {**profile["session"]["want_reply"], **sftp.get("want_reply", {})}
    assert set(sftp.get("requests", [])) <= set(wanted) | {"subsystem"}


def test_close(profile: dict) -> None:
    # The schema requires `disconnect` with close: disconnect; here, that no other profile has one.
    assert (profile["close"] == "disconnect") == ("disconnect" in profile)


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


def test_when_applies_per_session_facts() -> None:
    """plink's simple mode is data: the window and the simple@putty request follow forwarding."""
    plink = load_profile("plink-0.78")
    simple = plink.for_session(kind="exec", pty=False, forwarding=False)
    forwarding = plink.for_session(kind="exec", pty=False, forwarding=True)
    assert (simple.window, forwarding.window) == (2147483647, 16384)
    assert simple.session_requests[0] == "simple@putty.projects.tartarus.org"
    assert not simple.reply_wanted("simple@putty.projects.tartarus.org")
    assert "simple@putty.projects.tartarus.org" not in forwarding.session_requests
    assert forwarding is plink  # nothing matched: the profile itself


def test_when_entry_making_a_bad_profile_is_refused() -> None:
    source = Path(__file__).parent.parent / "simulator/data/profiles/plink-0.78.yaml"
    text = source.read_text().replace("channel: {window: 2147483647}", "channel: {window: 0}")
    with pytest.raises(BadInputError) as err:
        parse_profile(text, "plink.yaml")
    assert "when[0].then" in str(err.value) and "plink.yaml:" in str(err.value)
