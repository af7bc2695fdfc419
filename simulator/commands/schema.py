"""`sshsim schema`: print the JSON Schema of scenario files, for editors."""

from __future__ import annotations

import json

import click


@click.command("schema")
def schema() -> None:
    """Print the scenario JSON Schema (save it and point your editor's YAML plugin at it)."""
    from simulator.scenario import scenario_schema

    click.echo(json.dumps(scenario_schema(), indent=2))
