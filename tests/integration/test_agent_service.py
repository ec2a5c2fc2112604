"""The agent service over gRPC against real PostgreSQL, Redis and NATS JetStream.

All tests share one database, so each uses its own names, and routing tests use a capability
combination no other test gives its agents: agents of other tests cannot take part.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import grpc
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy
from redis.asyncio import Redis

from orchestrator.agent.directory import AgentDirectory
from orchestrator.agent.main import serve
from orchestrator.agent.presence import RedisPresence
from orchestrator.agent.service import AgentService
from orchestrator.agent.sweeper import OfflineSweeper
from orchestrator.api.agent.v1 import agent_pb2 as pb
from orchestrator.api.agent.v1 import agent_pb2_grpc
from orchestrator.api.common.v1 import common_pb2
from orchestrator.api.common.v1 import taxonomy_pb2 as tx
from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.task.v1 import task_pb2
from orchestrator.common.settings import Settings
from orchestrator.common.stack import pick_free_port
from tests.support.mesh import running_service, wait_until

pytestmark = pytest.mark.timeout(60)

S = pb.AgentStatus
# The generated stubs are typed for the synchronous API; grpc.aio's calls are awaitables.
Stub = Any


@pytest.fixture
async def stub(agent_service: str) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(agent_service) as channel:
        yield agent_pb2_grpc.AgentServiceStub(channel)


def _name(label: str = "T") -> str:
    return f"AGENT-{label}-{uuid.uuid4().hex[:10].upper()}"


def _register(**overrides: Any) -> pb.RegisterAgentRequest:
    fields: dict[str, Any] = {
        "name": _name(),
        "agent_type": pb.AGENT_TYPE_IMPLEMENTER,
        "primary_capabilities": [tx.CAPABILITY_CODE_GENERATION],
        "actor": "tests",
    }
    fields.update(overrides)
    return pb.RegisterAgentRequest(**fields)


async def _online(stub: Stub, **overrides: Any) -> pb.Agent:
    """A registered agent that has heart-beaten once (IDLE, or BUSY with tasks)."""
    agent = (await stub.RegisterAgent(_register(**overrides))).agent
    beat: pb.HeartbeatResponse = await stub.Heartbeat(pb.HeartbeatRequest(agent_id=agent.id))
    return beat.agent


async def _events_of(settings: Settings, nc: Any, agent_id: str) -> list[events_pb2.Event]:
    """Every event of one agent in the stream, read with an ephemeral consumer."""
    sub = await nc.jetstream().pull_subscribe(
        f"orch.agent.{agent_id}.>",
        stream=settings.stream_name,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    events: list[events_pb2.Event] = []
    try:
        while True:
            msgs = await sub.fetch(100, timeout=0.5)
            events += [events_pb2.Event.FromString(m.data) for m in msgs]
    except Exception:  # the fetch times out once the stream has nothing more
        pass
    finally:
        await sub.unsubscribe()
    return events


async def _wait_events(
    settings: Settings, nc: Any, agent_id: str, count: int
) -> list[events_pb2.Event]:
    events: list[events_pb2.Event] = []
    for _ in range(100):
        events = await _events_of(settings, nc, agent_id)
        if len(events) >= count:
            return events
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {count} events for {agent_id}, got {len(events)}")


async def _rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value


def _field(err: grpc.aio.AioRpcError) -> str | None:
    metadata: Any = err.trailing_metadata() or ()
    return dict(metadata).get("orch-error-field")


async def test_lifecycle_persists_and_publishes_every_change(
    stub: Stub, settings: Settings, nc: Any
) -> None:
    created = (await stub.RegisterAgent(_register(max_concurrent_tasks=2))).agent
    assert created.status == S.AGENT_STATUS_REGISTERING and created.version == 1
    aid = created.id
    beat = await stub.Heartbeat(pb.HeartbeatRequest(agent_id=aid))
    assert beat.agent.status == S.AGENT_STATUS_IDLE and beat.agent.version == 2
    assert beat.ttl_seconds == 10 and beat.expires_at.seconds > time.time()
    assert beat.agent.HasField("last_heartbeat_at")
    busy = (await stub.Heartbeat(pb.HeartbeatRequest(agent_id=aid, current_task_ids=["t1"]))).agent
    assert busy.status == S.AGENT_STATUS_BUSY and busy.version == 3
    assert list(busy.load.current_task_ids) == ["t1"] and busy.load.utilisation == 0.5
    assert busy.load.level == pb.LOAD_LEVEL_OPTIMAL
    same = (await stub.Heartbeat(pb.HeartbeatRequest(agent_id=aid, current_task_ids=["t1"]))).agent
    assert same.version == 3, "a refresh alone does not bump the version"
    drained = (await stub.DrainAgent(pb.DrainAgentRequest(agent_id=aid, reason="upgrade"))).agent
    assert drained.status == S.AGENT_STATUS_DRAINING and drained.status_reason == "upgrade"
    still = await stub.Heartbeat(pb.HeartbeatRequest(agent_id=aid, status=S.AGENT_STATUS_IDLE))
    assert still.agent.status == S.AGENT_STATUS_DRAINING and still.agent.version == 4
    gone = (await stub.DeregisterAgent(pb.DeregisterAgentRequest(agent_id=aid))).agent
    assert gone.status == S.AGENT_STATUS_DEREGISTERED and gone.HasField("deregistered_at")
    late = await stub.Heartbeat(pb.HeartbeatRequest(agent_id=aid))
    assert late.agent.status == S.AGENT_STATUS_DEREGISTERED and late.ttl_seconds == 0
    assert (await stub.GetAgent(pb.GetAgentRequest(agent_id=aid))).agent == gone

    events = await _wait_events(settings, nc, aid, 7)
    assert [e.type for e in events] == [
        "agent.registered",
        "agent.online",
        "agent.busy",
        "agent.load_changed",
        "agent.draining",
        "agent.load_changed",  # the draining heartbeat reported no task
        "agent.deregistered",
    ]
    assert [e.aggregate_version for e in events] == [1, 2, 3, 3, 4, 4, 5]
    assert events[1].agent.previous_status == S.AGENT_STATUS_REGISTERING
    assert all(e.source == "agent" and e.session_id == "" for e in events)
    assert list(events[3].agent.agent.load.current_task_ids) == ["t1"]


async def test_duplicate_names_conflict_and_repeated_registration_is_idempotent(
    stub: Stub,
) -> None:
    request = _register(agent_id=str(uuid.uuid4()))
    first = (await stub.RegisterAgent(request)).agent
    again = (await stub.RegisterAgent(request)).agent
    assert again.id == first.id and again.version == 1
    err = await _rpc_error(stub.RegisterAgent(_register(name=request.name)))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS and _field(err) == "name"
    assert f"name {request.name} is taken by agent {first.id}" in (err.details() or "")
    changed = pb.RegisterAgentRequest()
    changed.CopyFrom(request)
    changed.max_concurrent_tasks = 3
    err = await _rpc_error(stub.RegisterAgent(changed))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS and _field(err) == "agent_id"
    await stub.DeregisterAgent(pb.DeregisterAgentRequest(agent_id=first.id))
    successor = (await stub.RegisterAgent(_register(name=request.name))).agent
    assert successor.id != first.id
    by_name = (await stub.GetAgent(pb.GetAgentRequest(name=request.name))).agent
    assert by_name.id == successor.id


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"name": "agent-lower"}, "name", "malformed"),
        ({"name": "AGENT_UNDERSCORE"}, "name", "malformed"),
        ({"agent_type": 99}, "agent_type", "99 is not a known agent type"),
        ({"agent_type": 0}, "agent_type", "agent_type is required"),
        ({"primary_capabilities": [99]}, "primary_capabilities", "99 is not a known capability"),
        ({"primary_capabilities": [0]}, "primary_capabilities", "CAPABILITY_UNSPECIFIED"),
        ({"primary_capabilities": []}, "primary_capabilities", "at least one"),
        ({"secondary_capabilities": [77]}, "secondary_capabilities", "not a known capability"),
        ({"preferred_session_types": [42]}, "preferred_session_types", "not a known session"),
        ({"executor_kind": pb.EXECUTOR_KIND_OPENCODE}, "executor_endpoint", "http(s) URL"),
        ({"max_concurrent_tasks": -2}, "max_concurrent_tasks", "1 to 1000"),
        ({"model_identifier": "gpt"}, "model_identifier", "provider/model"),
    ],
)
async def test_bad_registrations_are_refused_and_change_nothing(
    stub: Stub, settings: Settings, nc: Any, overrides: dict[str, Any], field: str, says: str
) -> None:
    agent_id = str(uuid.uuid4())
    request = _register(agent_id=agent_id, **overrides)
    err = await _rpc_error(stub.RegisterAgent(request))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _field(err) == field and says in (err.details() or "")
    missing = await _rpc_error(stub.GetAgent(pb.GetAgentRequest(agent_id=agent_id)))
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    if field != "name":
        missing = await _rpc_error(stub.GetAgent(pb.GetAgentRequest(name=request.name)))
        assert missing.code() == grpc.StatusCode.NOT_FOUND
    assert await _events_of(settings, nc, agent_id) == []


async def test_unknown_ids_stale_versions_and_refused_moves(stub: Stub) -> None:
    err = await _rpc_error(stub.GetAgent(pb.GetAgentRequest(agent_id=str(uuid.uuid4()))))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await _rpc_error(stub.Heartbeat(pb.HeartbeatRequest(agent_id="nope")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and _field(err) == "agent_id"
    err = await _rpc_error(stub.GetAgent(pb.GetAgentRequest()))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    agent = (await stub.RegisterAgent(_register())).agent
    err = await _rpc_error(stub.DrainAgent(pb.DrainAgentRequest(agent_id=agent.id)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "registering; it cannot go to draining" in (err.details() or "")
    err = await _rpc_error(
        stub.DeregisterAgent(pb.DeregisterAgentRequest(agent_id=agent.id, expected_version=9))
    )
    assert err.code() == grpc.StatusCode.ABORTED and "version 1" in (err.details() or "")
    err = await _rpc_error(
        stub.Heartbeat(pb.HeartbeatRequest(agent_id=agent.id, status=S.AGENT_STATUS_OFFLINE))
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and _field(err) == "status"
    after = (await stub.GetAgent(pb.GetAgentRequest(agent_id=agent.id))).agent
    assert after.version == 1 and after.status == S.AGENT_STATUS_REGISTERING


async def _pages(stub: Stub, caps: list[Any], size: int, total: int) -> list[list[str]]:
    """The ids of every page of agents holding `caps`, following the page tokens; each page
    must report `total` matching agents."""
    pages: list[list[str]] = []
    token = ""
    while True:
        page = await stub.ListAgents(
            pb.ListAgentsRequest(
                capabilities=caps, page=common_pb2.PageRequest(page_size=size, page_token=token)
            )
        )
        assert page.page.total_size == total
        pages.append([a.id for a in page.agents])
        token = page.page.next_page_token
        if not token:
            return pages


async def test_list_filters_and_pages(stub: Stub) -> None:
    caps = [tx.CAPABILITY_SCALING, tx.CAPABILITY_MONITORING, tx.CAPABILITY_DEPLOYMENT]
    names = sorted(_name("L") for _ in range(5))
    ids = []
    for i, name in enumerate(names):
        agent_type = pb.AGENT_TYPE_INTEGRATOR if i < 2 else pb.AGENT_TYPE_OPTIMIZER
        request = _register(name=name, agent_type=agent_type, primary_capabilities=caps)
        ids.append((await stub.RegisterAgent(request)).agent.id)
    await stub.Heartbeat(pb.HeartbeatRequest(agent_id=ids[0]))
    await stub.Heartbeat(pb.HeartbeatRequest(agent_id=ids[1]))
    await stub.DrainAgent(pb.DrainAgentRequest(agent_id=ids[1]))
    for n in range(5):
        await stub.RecordTaskResult(
            pb.RecordTaskResultRequest(
                agent_id=ids[0], task_id=f"t-{n}", outcome=pb.TASK_OUTCOME_COMPLETED
            )
        )

    async def listed(**fields: Any) -> list[str]:
        reply = await stub.ListAgents(pb.ListAgentsRequest(capabilities=caps, **fields))
        return [a.id for a in reply.agents]

    assert await listed() == ids
    assert await listed(statuses=[S.AGENT_STATUS_IDLE]) == ids[:1]
    assert await listed(statuses=[S.AGENT_STATUS_DRAINING, S.AGENT_STATUS_IDLE]) == ids[:2]
    assert await listed(agent_types=[pb.AGENT_TYPE_OPTIMIZER]) == ids[2:]
    assert await listed(tiers=[pb.PERFORMANCE_TIER_ELITE]) == ids[:1]
    await stub.DeregisterAgent(pb.DeregisterAgentRequest(agent_id=ids[4]))
    assert await listed() == ids[:4]
    assert await listed(statuses=[S.AGENT_STATUS_DEREGISTERED]) == ids[4:]
    assert await _pages(stub, caps, size=2, total=4) == [ids[:2], ids[2:4]]
    err = await _rpc_error(
        stub.ListAgents(pb.ListAgentsRequest(page=common_pb2.PageRequest(page_token="junk")))
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_route_picks_the_best_agent_and_shows_the_score(stub: Stub) -> None:
    caps = [tx.CAPABILITY_ROOT_CAUSE_ANALYSIS, tx.CAPABILITY_TROUBLESHOOTING]
    third = tx.CAPABILITY_BUG_FIXING
    python = await _online(
        stub, primary_capabilities=[*caps, third], preferred_technologies=["Python"]
    )
    go = await _online(stub, primary_capabilities=[*caps, third], preferred_technologies=["go"])
    secondary = await _online(
        stub,
        primary_capabilities=[third],
        secondary_capabilities=caps,
        preferred_technologies=["python"],
    )
    request = pb.RouteTaskRequest(
        required_capabilities=[*caps, third], technologies=["PYTHON"], task_id="route-1"
    )
    routed = await stub.RouteTask(request)
    assert routed.agent.id == python.id
    # 0.25 + 0.30 · 0.8 + 0.15 + 0.15 + 0.05 + 0.10 = 0.94, COMPETENT
    assert routed.score.capability_fit == 1.0 and routed.score.technology_match == 1.0
    assert routed.score.success_rate == pytest.approx(0.8)
    assert routed.score.total == pytest.approx(0.94) and routed.score.tier_multiplier == 1.0
    # secondary fit (0.7·2 + 1) / 3 = 0.8 -> 0.89; go: no technology -> 0.79
    assert [c.agent_id for c in routed.candidates] == [python.id, secondary.id, go.id]
    assert [c.score.total for c in routed.candidates] == pytest.approx([0.94, 0.89, 0.79])
    assert (await stub.RouteTask(request)).agent.id == python.id, "same inputs, same agent"
    request.excluded_agent_ids.append(python.id)
    request.max_candidates = 1
    fallback = await stub.RouteTask(request)
    assert fallback.agent.id == secondary.id and len(fallback.candidates) == 1


async def test_no_fit_says_why_for_each_class_of_candidate(stub: Stub) -> None:
    caps = [tx.CAPABILITY_COMPLIANCE_CHECK, tx.CAPABILITY_CONFLICT_RESOLUTION]
    await _online(stub, primary_capabilities=caps, max_concurrent_tasks=1)
    full = await _online(stub, primary_capabilities=caps, max_concurrent_tasks=1)
    await stub.Heartbeat(pb.HeartbeatRequest(agent_id=full.id, current_task_ids=["x"]))
    draining = await _online(stub, primary_capabilities=caps)
    await stub.DrainAgent(pb.DrainAgentRequest(agent_id=draining.id))
    await stub.RegisterAgent(_register(primary_capabilities=caps))
    # Someone holds the third capability, just not together with the other two.
    await stub.RegisterAgent(_register(primary_capabilities=[tx.CAPABILITY_REQUIREMENTS_ANALYSIS]))
    free = (await stub.RouteTask(pb.RouteTaskRequest(required_capabilities=caps))).agent
    await stub.Heartbeat(pb.HeartbeatRequest(agent_id=free.id, current_task_ids=["y"]))

    err = await _rpc_error(stub.RouteTask(pb.RouteTaskRequest(required_capabilities=caps)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.details() == (
        "no eligible agent for COMPLIANCE_CHECK, CONFLICT_RESOLUTION: 2 at capacity, "
        "1 draining, 1 registering (4 agents hold COMPLIANCE_CHECK, CONFLICT_RESOLUTION)"
    )
    together = [*caps, tx.CAPABILITY_REQUIREMENTS_ANALYSIS]
    err = await _rpc_error(stub.RouteTask(pb.RouteTaskRequest(required_capabilities=together)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no agent holds all of COMPLIANCE_CHECK, CONFLICT_RESOLUTION, REQUIREMENTS_ANALYSIS" in (
        err.details() or ""
    )
    unknown: Any = [123]
    err = await _rpc_error(stub.RouteTask(pb.RouteTaskRequest(required_capabilities=unknown)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _field(err) == "required_capabilities"


async def test_reserve_gives_the_last_slot_to_one_route_and_a_result_frees_it(
    stub: Stub, settings: Settings, nc: Any
) -> None:
    caps = [tx.CAPABILITY_RESOURCE_ALLOCATION, tx.CAPABILITY_PROGRESS_TRACKING]
    agent = await _online(stub, primary_capabilities=caps, max_concurrent_tasks=1)

    async def route(task_id: str) -> grpc.StatusCode:
        request = pb.RouteTaskRequest(required_capabilities=caps, task_id=task_id, reserve=True)
        try:
            await stub.RouteTask(request)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    codes = await asyncio.gather(*(route(f"race-{i}") for i in range(10)))
    assert codes.count(grpc.StatusCode.OK) == 1
    assert set(codes) - {grpc.StatusCode.OK} == {grpc.StatusCode.FAILED_PRECONDITION}
    held = (await stub.GetAgent(pb.GetAgentRequest(agent_id=agent.id))).agent
    [winner] = held.load.current_task_ids
    assert held.load.level == pb.LOAD_LEVEL_OVERLOADED
    again = await stub.RouteTask(
        pb.RouteTaskRequest(required_capabilities=caps, task_id=winner, reserve=True)
    )
    assert again.agent.id == agent.id, "routing the same task again keeps its slot"
    freed = await stub.RecordTaskResult(
        pb.RecordTaskResultRequest(
            agent_id=agent.id,
            task_id=winner,
            fencing_token=1,
            outcome=pb.TASK_OUTCOME_COMPLETED,
            duration_seconds=12.5,
            quality_score=0.9,
        )
    )
    assert list(freed.agent.load.current_task_ids) == []
    assert await route("after") == grpc.StatusCode.OK
    err = await _rpc_error(
        stub.RouteTask(pb.RouteTaskRequest(required_capabilities=caps, reserve=True))
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and _field(err) == "task_id"
    events = await _wait_events(settings, nc, agent.id, 5)
    loads = [list(e.agent.agent.load.current_task_ids) for e in events if "load" in e.type]
    assert loads[:1] == [[winner]] and ["after"] in loads


async def test_a_finished_task_event_frees_its_reserved_slot(
    stub: Stub, settings: Settings, nc: Any
) -> None:
    caps = [tx.CAPABILITY_WORKFLOW_ORCHESTRATION, tx.CAPABILITY_SYSTEM_DESIGN]
    agent = await _online(stub, primary_capabilities=caps, max_concurrent_tasks=1)
    task_id = str(uuid.uuid4())
    request = pb.RouteTaskRequest(required_capabilities=caps, task_id=task_id, reserve=True)
    assert (await stub.RouteTask(request)).agent.id == agent.id
    event = events_pb2.Event(
        event_id=str(uuid.uuid4()),
        type="task.cancelled",
        aggregate_type="task",
        aggregate_id=task_id,
        task=events_pb2.TaskEvent(
            task=task_pb2.Task(id=task_id, status=task_pb2.TASK_STATUS_CANCELLED)
        ),
    )
    await nc.jetstream().publish(f"orch.task._.{task_id}.cancelled", event.SerializeToString())

    async def freed() -> bool:
        got = (await stub.GetAgent(pb.GetAgentRequest(agent_id=agent.id))).agent
        return not got.load.current_task_ids

    await wait_until(freed, within=10, what="the cancelled task's slot to be freed")


def _run_end(task_id: str, token: int, kind: str, agent_id: str) -> events_pb2.Event:
    """A task event that ends a run of `task_id` on `agent_id`, 2 s after it started."""
    status = {
        "completed": task_pb2.TASK_STATUS_COMPLETED,
        "retry_scheduled": task_pb2.TASK_STATUS_READY,
    }[kind]
    task = task_pb2.Task(
        id=task_id,
        status=status,
        fencing_token=token,
        last_agent_id=agent_id,
    )
    task.started_at.FromSeconds(1_000)
    event = events_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=f"task.{kind}",
        aggregate_type="task",
        aggregate_id=task_id,
        task=events_pb2.TaskEvent(task=task, previous_status=task_pb2.TASK_STATUS_IN_PROGRESS),
    )
    event.occurred_at.FromSeconds(1_002)
    return event


async def test_run_ends_on_the_task_stream_build_the_track_record_once_per_token(
    stub: Stub, nc: Any
) -> None:
    agent = await _online(stub, primary_capabilities=[tx.CAPABILITY_DEBUGGING])
    done, retried = str(uuid.uuid4()), str(uuid.uuid4())
    events = [
        _run_end(done, 1, "completed", agent.id),
        _run_end(retried, 1, "retry_scheduled", agent.id),
        # A redelivered report of the same run, under a new event id: recorded once.
        _run_end(done, 1, "completed", agent.id),
    ]
    js = nc.jetstream()
    for event in events:
        subject = f"orch.task._.{event.aggregate_id}.{event.type.removeprefix('task.')}"
        await js.publish(subject, event.SerializeToString())

    async def recorded() -> bool:
        got = (await stub.GetAgent(pb.GetAgentRequest(agent_id=agent.id))).agent
        return bool(got.performance.tasks_completed + got.performance.tasks_failed >= 2)

    await wait_until(recorded, within=10, what="both runs in the track record")
    await asyncio.sleep(0.5)  # a third record would land about now
    got = (await stub.GetAgent(pb.GetAgentRequest(agent_id=agent.id))).agent
    assert (got.performance.tasks_completed, got.performance.tasks_failed) == (1, 1)
    assert got.performance.average_duration_seconds == pytest.approx(2.0)


async def test_results_build_the_track_record_and_the_tier(stub: Stub) -> None:
    caps = [tx.CAPABILITY_SECURITY_AUDIT, tx.CAPABILITY_PERFORMANCE_ANALYSIS]
    agent = await _online(stub, primary_capabilities=caps)

    async def record(n: int, outcome: pb.TaskOutcome.ValueType, token: int = 1) -> pb.Agent:
        request = pb.RecordTaskResultRequest(
            agent_id=agent.id,
            task_id=f"{agent.id}-{n}",
            fencing_token=token,
            outcome=outcome,
            duration_seconds=10.0 * n,
        )
        reply: pb.RecordTaskResultResponse = await stub.RecordTaskResult(request)
        return reply.agent

    for n in range(1, 6):
        latest = await record(n, pb.TASK_OUTCOME_COMPLETED)
    assert latest.performance.tier == pb.PERFORMANCE_TIER_ELITE
    assert latest.performance.tasks_completed == 5 and latest.performance.success_rate == 1.0
    assert latest.performance.average_duration_seconds == pytest.approx(30.0)
    assert (await record(5, pb.TASK_OUTCOME_COMPLETED)).version == latest.version, "applied once"
    routed = await stub.RouteTask(pb.RouteTaskRequest(required_capabilities=caps))
    assert routed.agent.id == agent.id and routed.score.tier_multiplier == pytest.approx(1.1)
    for n in range(6, 9):
        latest = await record(n, pb.TASK_OUTCOME_FAILED)
    assert latest.performance.tier == pb.PERFORMANCE_TIER_DEGRADED
    assert latest.performance.consecutive_failures == 3
    err = await _rpc_error(stub.RouteTask(pb.RouteTaskRequest(required_capabilities=caps)))
    assert "1 degraded" in (err.details() or "")
    err = await _rpc_error(
        stub.RecordTaskResult(
            pb.RecordTaskResultRequest(
                agent_id=agent.id, task_id="t", outcome=pb.TASK_OUTCOME_UNSPECIFIED
            )
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and _field(err) == "outcome"


async def test_watch_streams_the_snapshot_then_each_change(stub: Stub) -> None:
    agent = (await stub.RegisterAgent(_register())).agent
    call = stub.WatchAgents(pb.WatchAgentsRequest(agent_ids=[agent.id]))
    first = await call.read()
    assert first.agent.id == agent.id and first.event_type == ""
    await stub.Heartbeat(pb.HeartbeatRequest(agent_id=agent.id))
    update = await asyncio.wait_for(call.read(), 10)
    assert update.event_type == "agent.online" and update.agent.status == S.AGENT_STATUS_IDLE
    await stub.Heartbeat(pb.HeartbeatRequest(agent_id=agent.id, current_task_ids=["w"]))
    busy = await asyncio.wait_for(call.read(), 10)
    load = await asyncio.wait_for(call.read(), 10)
    assert (busy.event_type, load.event_type) == ("agent.busy", "agent.load_changed")
    assert list(load.agent.load.current_task_ids) == ["w"]
    call.cancel()


async def test_a_missed_heartbeat_publishes_agent_offline_within_ttl_plus_two_seconds(
    settings: Settings, nc: Any
) -> None:
    ttl = 2
    replica = settings.model_copy(
        update={
            "agent_addr": f"127.0.0.1:{pick_free_port()}",
            "agent_heartbeat_ttl_seconds": ttl,
        }
    )
    async with (
        running_service(serve, replica.agent_addr, "agent", replica) as address,
        grpc.aio.insecure_channel(address) as channel,
    ):
        stub: Stub = agent_pb2_grpc.AgentServiceStub(channel)
        agent = (await stub.RegisterAgent(_register())).agent
        beat = await stub.Heartbeat(pb.HeartbeatRequest(agent_id=agent.id))
        assert beat.ttl_seconds == ttl
        last_beat = time.monotonic()
        offline: list[events_pb2.Event] = []

        async def went_offline() -> bool:
            events = await _events_of(settings, nc, agent.id)
            offline[:] = [e for e in events if e.type == "agent.offline"]
            return bool(offline)

        await wait_until(went_offline, within=ttl + 2, what="agent.offline")
        assert time.monotonic() - last_beat <= ttl + 2
        assert offline[0].agent.agent.status == S.AGENT_STATUS_OFFLINE
        assert offline[0].agent.previous_status == S.AGENT_STATUS_IDLE
        assert "no heartbeat since" in offline[0].agent.reason
        back = await stub.Heartbeat(pb.HeartbeatRequest(agent_id=agent.id))
        assert back.agent.status == S.AGENT_STATUS_IDLE


async def test_racing_sweepers_mark_an_agent_offline_exactly_once(
    settings: Settings, pool: asyncpg.Pool, nc: Any, agent_service: str
) -> None:
    redis = Redis.from_url(str(settings.redis_url))
    try:
        services = [
            AgentService(pool, RedisPresence(redis), AgentDirectory(), heartbeat_ttl_seconds=60)
            for _ in range(2)
        ]
        sweepers = [OfflineSweeper(s, RedisPresence(redis)) for s in services]
        agent = await services[0].register(
            name=_name("SWEEP"), agent_type="analyst", primary_capabilities=["monitoring"]
        )
        await services[0].heartbeat(agent.id, None, [], None)
        # Its liveness runs out now, not in a minute.
        await redis.delete(f"orch:agent:{agent.id}:alive")
        marked = await asyncio.gather(*(s.expire(agent.id) for s in services))
        assert sorted(marked) == [False, True]
        swept = await asyncio.gather(*(s.sweep_once() for s in sweepers))
        assert swept.count(0) >= 1
        events = await _wait_events(settings, nc, agent.id, 3)
        assert [e.type for e in events].count("agent.offline") == 1
        assert (await services[1].get(agent.id)).version == 3
    finally:
        await redis.aclose()


async def test_after_a_spell_without_sweeps_silent_agents_get_one_more_ttl(
    settings: Settings, pool: asyncpg.Pool, agent_service: str
) -> None:
    # A Redis database of its own: the shared agent service sweeps the default one all along.
    redis = Redis.from_url(str(settings.redis_url).rsplit("/", 1)[0] + "/7")
    try:
        await redis.flushdb()
        presence = RedisPresence(redis)
        service = AgentService(pool, presence, AgentDirectory(), heartbeat_ttl_seconds=30)
        sweeper = OfflineSweeper(service, presence, interval_seconds=0.2)
        agent = await service.register(
            name=_name("BLIND"), agent_type="analyst", primary_capabilities=["monitoring"]
        )
        await service.heartbeat(agent.id, None, [], None)
        await presence.rearmed()
        # Its liveness ran out while no sweep could run (as when Redis was down): the last
        # sweep is long past, and so is its deadline.
        await redis.delete(f"orch:agent:{agent.id}:alive")
        await redis.zadd("orch:agent:deadlines", {agent.id: 1})
        await redis.set("orch:agent:swept", 1)
        now_ms = int(time.time() * 1000)

        assert await sweeper.sweep_once() == 0
        deadline = await redis.zscore("orch:agent:deadlines", agent.id)
        # One TTL (30 s) and the time workers take to connect again (3 s).
        assert deadline is not None and deadline >= now_ms + 32_000
        assert (await service.get(agent.id)).status.value != "offline"
        # Sweeping again at once: no longer blind, and the agent still has its grace.
        assert await sweeper.sweep_once() == 0
        # Silent past that grace, with sweeps running all along: now it is believed.
        await redis.zadd("orch:agent:deadlines", {agent.id: now_ms - 1})
        assert await sweeper.sweep_once() == 1
        assert (await service.get(agent.id)).status.value == "offline"
    finally:
        await redis.flushdb()
        await redis.aclose()


async def test_a_sweeper_rearms_live_agents_after_redis_lost_them(
    settings: Settings, pool: asyncpg.Pool, agent_service: str
) -> None:
    redis = Redis.from_url(str(settings.redis_url))
    try:
        presence = RedisPresence(redis)
        service = AgentService(pool, presence, AgentDirectory())
        agent = await service.register(
            name=_name("REARM"), agent_type="analyst", primary_capabilities=["monitoring"]
        )
        # What a Redis restart looks like to this agent.
        await redis.delete(f"orch:agent:{agent.id}:alive", "orch:agent:armed")
        await redis.zrem("orch:agent:deadlines", agent.id)
        sweeper = OfflineSweeper(service, presence)

        async def rearmed() -> bool:
            # Either this sweeper or the running service's (whoever holds the lock) re-arms.
            await sweeper.sweep_once()
            return await redis.zscore("orch:agent:deadlines", agent.id) is not None

        await wait_until(rearmed, within=5, what="the agent's deadline to be re-armed")
        assert await redis.exists("orch:agent:armed")
    finally:
        await redis.aclose()
