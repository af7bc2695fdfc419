"""`sshsim profiles`: the client profiles, and with --hassh what the driver really sends."""

from __future__ import annotations

import asyncio
import json

import click


@click.command("profiles")
@click.option("--hassh", is_flag=True,
              help="Capture each profile's KEXINIT from the driver on loopback and print its HASSH.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per profile.")
@click.argument("names", nargs=-1)
def profiles(hassh: bool, as_json: bool, names: tuple[str, ...]) -> None:
    """List client profiles (all, or NAMES)."""
    # imported here: start-up cost: `sshsim profiles --help` loads no profiles; asyncssh only with --hassh
    from simulator.profiles import known_profiles, load_profile

    chosen = list(names) or sorted(known_profiles())
    loaded = [load_profile(name) for name in chosen]
    captured: dict[str, str] = {}
    if hassh:
        # imported here: start-up cost: `sshsim profiles --help` loads no profiles; asyncssh only with --hassh
        from simulator.driver.wire import capture_kexinit

        async def capture_all() -> None:
            for profile in loaded:
                captured[profile.name] = (await capture_kexinit(profile)).hassh

        asyncio.run(capture_all())
    for p in loaded:
        row = {"name": p.name, "banner": p.banner, "client": p.client, "version": p.version,
               "kex": p.kex[0] if p.kex else None, "strict_kex": p.strict_kex, "ext_info": p.ext_info,
               "first_channel": p.first_channel, "window": p.window, "guess": list(p.guess)}
        if hassh:
            row["hassh"] = captured[p.name]
            row["hassh_matches_profile"] = captured[p.name] == p.hassh
        if as_json:
            click.echo(json.dumps(row))
        else:
            tail = ""
            if hassh:
                differs = "" if captured[p.name] == p.hassh else "  (differs from the profile file!)"
                tail = f"  hassh={captured[p.name]}{differs}"
            guess = f"  guess: {','.join(p.guess)}" if p.guess else ""
            click.echo(f"{p.name:22} {p.banner:34} chan {p.first_channel:<4} win {p.window:<10}{tail}{guess}")
