"""sshsim as a pytest plugin (entry point `pytest11: sshsim`): scenario files as test items, and
fixtures for tests written in Python.

`pytest scenarios/` collects every scenario file and makes one item per scenario, or per matrix
cell (`invalid-user.yaml::invalid-user[user=a]`), so -k, -x, --junitxml and pytest-xdist's -n
work as for any test. An item starts its own private target in setup (a target that cannot
start is a pytest *error*, as `sshsim run` writes a JUnit <error>), plays the scenario in the
test call and reports a failed expectation with the verifier's own text. Each item has its own
sshd (its own port, namespaces and work folder: simulator/target/local.py), so xdist workers
never share one.

Which files are scenarios: a `.yaml`/`.yml` file whose text has a top-level `connections:` key,
except the building blocks of a `generate` spec (files in a folder that holds one: a YAML file
with a top-level `mix:` key, scenarios/generate/). Files elsewhere are collected only under a
folder named `scenarios` or when named on the command line, so a project's YAML test data
(tests/data/...) is never taken for scenarios.

Fixtures:
- `sshd(overrides=[...], log_level="DEBUG1", users=None, **spec)`: a started private sshd
  (simulator/target/local.py LocalSshd) with those sshd_config lines; stopped at teardown.
- `sshsim_client(profile, server, user="user", password=None)`: an async context manager giving
  an asyncssh connection that looks like `profile`'s client on the wire (the driver's own
  connection code, simulator/driver/runner.py connect_profiled).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from simulator.errors import SshsimError
from simulator.limits import MAX_SOURCE_BYTES

if TYPE_CHECKING:  # what pytest's own repr_failure returns; pytest exports no public name for it
    from _pytest._code.code import TerminalRepr

_TOP_KEY = re.compile(r"^(connections|mix):", re.MULTILINE)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sshsim", "sshsim scenarios")
    group.addoption("--sshsim-target", default=None, metavar="TARGET",
                    help="Run collected scenarios on this target: local, local:VERSION or docker[:IMAGE] "
                         "(default: each scenario's own).")
    group.addoption("--sshsim-var", action="append", default=[], metavar="NAME=VALUE",
                    help="jinja2 variable for collected scenarios, as `sshsim run --var`; repeatable.")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sshd: needs a real local sshd (root and mount namespaces)")


def _top_keys(path: Path) -> set[str]:
    """The top-level keys sshsim looks for (`connections`, `mix`), read from at most
    MAX_SOURCE_BYTES of text: a file is judged without rendering it."""
    try:
        with open(path, "rb") as fh:
            text = fh.read(MAX_SOURCE_BYTES).decode("utf-8", "replace")
    except OSError:
        return set()
    return set(_TOP_KEY.findall(text))


def _holds_generate_spec(folder: Path, cache: dict[Path, bool]) -> bool:
    if folder not in cache:
        cache[folder] = any("mix" in _top_keys(p) for p in sorted(folder.glob("*.y*ml"))
                            if p.suffix in (".yaml", ".yml"))
    return cache[folder]


def is_scenario_file(path: Path, named: bool, cache: dict[Path, bool] | None = None) -> bool:
    """Whether pytest should collect `path` as a scenario file (the rule in the module docstring)."""
    if path.suffix not in (".yaml", ".yml") or "connections" not in _top_keys(path):
        return False
    if not named and "scenarios" not in path.parts:
        return False
    return not _holds_generate_spec(path.parent, {} if cache is None else cache)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    config = parent.config
    here = config.invocation_params.dir
    named = any((here / arg.split("::")[0]).resolve() == file_path.resolve() for arg in config.args)
    cache = config.stash.setdefault(_FOLDER_CACHE, {})
    if is_scenario_file(file_path, named, cache):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


_FOLDER_CACHE = pytest.StashKey[dict]()


class ScenarioFile(pytest.File):
    """A scenario file: one item per scenario, or per matrix cell."""

    def collect(self) -> Iterator[ScenarioItem]:
        # imported here: start-up cost: pytest start-up stays fast for test runs that use no sshsim item or fixture
        from simulator.commands import sshdconfig
        from simulator.commands.run import parse_vars
        from simulator.scenario import load_scenarios

        try:
            variables = parse_vars(tuple(self.config.getoption("sshsim_var") or ()))
            scenarios = load_scenarios(str(self.path), variables)
        except SshsimError as exc:
            # Reads as sshsim's own one-line error, not a traceback through the loader.
            raise self.CollectError(f"sshsim: error: {exc}") from None
        for scenario in scenarios:
            sshdconfig.use(scenario.server, None, log_level_asked=scenario.server.own_log_level)
            yield ScenarioItem.from_parent(self, name=scenario.name, scenario=scenario)


class ScenarioFailed(Exception):
    """A scenario ran and an expectation did not hold (or a client connection broke)."""

    def __init__(self, outcome: Any) -> None:
        super().__init__(outcome.name)
        self.outcome = outcome


class ScenarioItem(pytest.Item):
    """One scenario (one matrix cell): the target starts in setup, the scenario plays in the
    call, the target stops in teardown."""

    def __init__(self, *, scenario: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.server: Any = None
        self.add_marker("sshd")

    def setup(self) -> None:
        # imported here: start-up cost: pytest start-up stays fast for test runs that use no sshsim item or fixture
        from simulator.commands.run import start_target

        # A target that cannot start (sshd refused the config, no engine) makes the item an
        # error, not a failure; reported as sshsim's one line, not a traceback.
        problem = None
        try:
            self.server = start_target(self.scenario, self.config.getoption("sshsim_target"))
        except SshsimError as exc:
            problem = f"sshsim: error: {exc}"
        if problem is not None:
            pytest.fail(problem, pytrace=False)

    def runtest(self) -> None:
        # imported here: start-up cost: pytest start-up stays fast for test runs that use no sshsim item or fixture
        from simulator.commands.run import play

        outcome = asyncio.run(play(self.scenario, self.server, verify=True))
        if not outcome.ok:
            # pytest shows the section with the failure only: the whole log sshd wrote.
            self.add_report_section("call", "sshd log", "\n".join(outcome.lines))
            raise ScenarioFailed(outcome)
        if outcome.status == "skip":
            # Not for this sshd version (`requires:`): pytest's own skip, with the reason.
            pytest.skip(outcome.skipped[0].headline())

    def teardown(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            server.stop()

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        # imported here: start-up cost: pytest start-up stays fast for test runs that use no sshsim item or fixture
        from simulator.verify.outcome import render_failures

        if isinstance(excinfo.value, ScenarioFailed):
            return render_failures([excinfo.value.outcome])
        if isinstance(excinfo.value, SshsimError):
            return f"sshsim: error: {excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"scenario: {self.name}"


# -- fixtures for tests written in Python ------------------------------------------------------
@pytest.fixture
def sshd() -> Iterator[Callable[..., Any]]:
    """Start a private sshd: `sshd(overrides=["MaxAuthTries 2"], log_level="VERBOSE")`.

    Keyword arguments are simulator/target/base.py ServerSpec fields (users, overrides,
    log_level, pam_profile, ...). Every server started is stopped at teardown."""
    # imported here: start-up cost: pytest start-up stays fast for test runs that use no sshsim item or fixture
    from simulator.target.base import ServerSpec
    from simulator.target.local import LocalSshd

    started: list[Any] = []

    def start(overrides: list[str] | None = None, log_level: str = "DEBUG1", **spec: Any) -> Any:
        fields = {"overrides": list(overrides or []), "log_level": log_level, **spec}
        if fields.get("users") is None:
            fields.pop("users", None)
        server = LocalSshd(ServerSpec(**fields))
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in reversed(started):
            server.stop()


@pytest.fixture
def sshsim_client() -> Callable[..., Any]:
    """`async with sshsim_client("putty-0.80", server) as conn:` an asyncssh connection that
    looks like the profile's client; logs in with the user's generated key, or `password`."""
    # imported here: start-up cost: pytest start-up stays fast for test runs that use no sshsim item or fixture
    from simulator.driver.runner import connect_profiled
    from simulator.profiles import load_profile
    from simulator.scenario.model import AuthStep, ConnectionPlan

    @asynccontextmanager
    async def connect(profile: str, server: Any, user: str = "user",
                      password: str | None = None) -> AsyncIterator[Any]:
        client_profile = load_profile(profile)  # an unknown name is sshsim's one-line BadInputError
        step = AuthStep("password", password=password) if password is not None else AuthStep("publickey")
        plan = ConnectionPlan(id="sshsim_client", profile=profile, user=user, auth=[step])
        keys = [str(server.identity(user))] if password is None else None
        conn = await connect_profiled(server.host.strip("[]"), server.port, client_profile, username=user,
                                      plan=plan, client_keys=keys)
        try:
            yield conn
        finally:
            conn.close()
            await conn.wait_closed()

    return connect
