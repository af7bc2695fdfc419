"""Scenario files: loading (jinja2, YAML, JSON Schema) and the typed plan they become."""

from simulator.scenario.loader import load_scenario, load_scenarios, scenario_schema
from simulator.scenario.model import Scenario

__all__ = ["Scenario", "load_scenario", "load_scenarios", "scenario_schema"]
