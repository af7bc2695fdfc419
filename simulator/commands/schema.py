"""`sshsim schema`: print the JSON Schema of scenario files (or of client profiles), for editors."""

from __future__ import annotations

import json

import click


@click.command("schema")
@click.option("--profile", is_flag=True, help="Print the schema of client profile files instead.")
def schema(profile: bool) -> None:
    """Print the scenario JSON Schema (save it and point your editor's YAML plugin at it)."""
    if profile:
        # imported here: start-up cost: each schema loads only its own model
        from simulator.profiles import profile_schema

        click.echo(json.dumps(profile_schema(), indent=2))
        return
    # imported here: start-up cost: each schema loads only its own model
    from simulator.scenario import scenario_schema

    click.echo(json.dumps(scenario_schema(), indent=2))
