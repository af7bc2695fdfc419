"""The driver's live view of the server (after:, pause, wait_for) is the log's own engine fed
the capture's records: it finds a connection by its client port from what the catalogue's tags
say, at any log level. Real sshd, real asyncssh."""

from __future__ import annotations

import pytest
from conftest import needs_local_sshd

from simulator.driver.runner import run_scenario
from simulator.scenario.model import ConnectionPlan, Scenario, SyncPoint, WaitForAction
from simulator.target.base import ServerSpec
from simulator.target.local import LocalSshd


def _scenario(level: str, plans: list[ConnectionPlan]) -> Scenario:
    return Scenario(name="sync", path="sync.yaml", server=ServerSpec(log_level=level), target="local",
                    connections=plans, expectations={})


@needs_local_sshd
@pytest.mark.parametrize("level", ["INFO", "DEBUG1"])
async def test_after_waits_for_another_connections_event_at_any_level(level: str) -> None:
    """At INFO sshd writes no "Connection from" line: the connection is known by the endpoint
    its "Accepted publickey ... port P" line names (a regex on "Connection from" never saw it)."""
    plans = [ConnectionPlan(id="a", actions=[WaitForAction(SyncPoint("a", "auth.accepted", timeout=20))]),
             ConnectionPlan(id="b", after=SyncPoint("a", "auth.accepted", timeout=20))]
    with LocalSshd(_scenario(level, plans).server) as server:
        result = await run_scenario(_scenario(level, plans), server)
        records = server.log.records
    assert [c.error for c in result.connections.values()] == [None, None]
    accepted = [r for r in records if r.message.startswith("Accepted publickey")]
    assert len(accepted) == 2
    port_a = result.connections["a"].port
    first = next(r for r in accepted if f" port {port_a} " in r.message)
    # b started only once a's acceptance had been captured
    assert result.connections["b"].started >= first.arrival


@needs_local_sshd
async def test_a_wait_for_an_event_of_the_wrong_connection_times_out_with_what_it_awaited() -> None:
    """a's own auth.accepted is logged, but with fields that name another user: the wait looks
    at a's connection only, and the timeout says what was awaited."""
    plans = [ConnectionPlan(id="a", actions=[
        WaitForAction(SyncPoint("a", "auth.accepted", {"user": "nobody-else"}, timeout=2))])]
    with LocalSshd(_scenario("INFO", plans).server) as server:
        result = await run_scenario(_scenario("INFO", plans), server)
    assert result.connections["a"].error == "the server did not log auth.accepted of connection 'a' within 2 s"
