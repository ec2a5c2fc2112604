"""The benchmark's floor (orchestrator.bench.floor): the DAG's mandated traffic, with its three
parts as real processes on the real PostgreSQL and NATS, runs every task and loses nothing."""

from __future__ import annotations

from orchestrator.bench.floor import Floor, FloorAudit, bench_floor
from orchestrator.common.stack import EmbeddedStack


async def test_every_task_runs_and_every_event_is_published_and_followed(
    stack: EmbeddedStack,
) -> None:
    async with Floor(stack.database_url, stack.nats_url, workers=2, slots=2, queued=1) as floor:
        seconds = await floor.run(3, 4)
        await floor.run(2, 1)
        audit = await floor.audit()
    assert seconds > 0
    # 14 tasks: 5 events each; the session follower reads 3 of them, the agent follower 1.
    assert audit == FloorAudit(14, 14, 70, {"session": 42, "agent": 14}, 0)
    assert audit.clean and "nothing lost" in audit.line()


async def test_the_bench_prints_each_run_and_its_audit(stack: EmbeddedStack) -> None:
    lines, rates = await bench_floor(
        stack.database_url, stack.nats_url, stack.pids, (2, 3), 1, 2, 0, 2
    )
    assert len(rates) == 2 and all(rate > 0 for rate in rates)
    assert [line.split(":")[0] for line in lines if line.startswith("run ")] == ["run 1", "run 2"]
    assert sum("CPU ms per task" in line for line in lines) == 2
    # The warm-up run's 4 tasks count in the audit too.
    assert lines[-1].startswith("audit (nothing lost): 16 of 16 tasks completed, 80 events")


def test_an_audit_with_anything_missing_is_not_clean() -> None:
    whole = FloorAudit(2, 2, 10, {"session": 6, "agent": 2}, 0)
    assert whole.clean
    for broken in (
        FloorAudit(2, 1, 10, {"session": 6, "agent": 2}, 0),
        FloorAudit(2, 2, 9, {"session": 6, "agent": 2}, 0),
        FloorAudit(2, 2, 10, {"session": 5, "agent": 2}, 0),
        FloorAudit(2, 2, 10, {"session": 6, "agent": 2}, 1),
    ):
        assert not broken.clean and "MISMATCH" in broken.line()
