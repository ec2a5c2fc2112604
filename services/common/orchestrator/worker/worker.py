"""The agent worker: registers, heart-beats, takes assignments from JetStream and runs them.

Assignments arrive on a durable pull consumer that takes this agent's only (their subjects name
the agent), so one published while the worker was down is still delivered when it comes back.
A message is acked only once its task was reported (or refused), so a crash mid-run means a
redelivery, and StartTask's fencing makes that harmless.

A slot is busy only while its task starts and runs. The worker fetches up to `agent_prefetch`
assignments beyond its slots and holds them, not started, so a freed slot takes the next one at
once instead of waiting for a fetch; and a finished run's report goes out in the background
while its slot takes the next task. Held and reporting tasks are still the worker's: a
redelivery of one is deduplicated, a cancel drops a held one, the heartbeat names a task until
it was reported, and a shutdown hands held ones back and waits for the reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import grpc
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from orchestrator.api.agent.v1 import agent_pb2_grpc
from orchestrator.api.context.v1 import context_pb2_grpc
from orchestrator.api.session.v1 import session_pb2_grpc
from orchestrator.api.task.v1 import task_pb2_grpc
from orchestrator.common.channels import open_channel
from orchestrator.common.consumer import watch_pending
from orchestrator.common.logs import log_ids
from orchestrator.common.metrics import Poller, metrics_served
from orchestrator.common.pull import fetch_ready
from orchestrator.common.runtime import connect_nats
from orchestrator.common.settings import Settings
from orchestrator.common.telemetry import continued
from orchestrator.worker.agent_link import AgentLink
from orchestrator.worker.config import WorkerConfig
from orchestrator.worker.executors.base import Executor
from orchestrator.worker.messages import (
    ABORT_SUBJECTS,
    assigned_subject,
    assignment_for,
    decode_task_event,
)
from orchestrator.worker.runner import RPC_TIMEOUT_SECONDS, Run, TaskRunner
from orchestrator.worker.session_brief import SessionBriefs
from orchestrator.worker.work_stream import WorkStream

if TYPE_CHECKING:
    from orchestrator.api.task.v1.task_pb2_grpc import TaskServiceAsyncStub

log = logging.getLogger(__name__)

# Long enough for slow networks; running tasks refresh it (in_progress) with each lease renewal.
ACK_WAIT_SECONDS = 30.0
FETCH_TIMEOUT_SECONDS = 1.0
# A newer assignment of a task still running here waits this long before it is offered again.
REDELIVER_DELAY_SECONDS = 2.0
# Held assignments are marked in progress this often, well within the ack wait.
HELD_TOUCH_SECONDS = ACK_WAIT_SECONDS / 3


class Worker:
    def __init__(self, settings: Settings, config: WorkerConfig, executor: Executor) -> None:
        self.settings = settings
        self.config = config
        self.agent_id = config.agent_id
        self.ready = asyncio.Event()
        # Every task the worker holds: waiting for a slot, starting, running or being reported.
        self.runs: dict[str, Run] = {}
        # The assignments fetched beyond the free slots, oldest first: their runs are in `runs`,
        # not started (see Settings.agent_prefetch).
        self._held: dict[str, Msg] = {}
        # The tasks that hold a slot: starting or running. Never more than max_tasks.
        self._in_slots: set[str] = set()
        self._prefetch = settings.agent_prefetch
        self._executor = executor
        self._stopping = asyncio.Event()
        self._finished = asyncio.Event()
        # Set when a run starts or ends: the heartbeat reports the new load at once.
        self._load_changed = asyncio.Event()
        # Set when there may be room for more assignments: a slot freed or a held one dropped.
        self._room = asyncio.Event()
        self._channels: list[grpc.aio.Channel] = []
        self._work: WorkStream | None = None
        self._nc: NATS | None = None

    @property
    def held(self) -> list[str]:
        """The tasks whose assignments wait here for a slot, oldest first."""
        return list(self._held)

    @property
    def busy_slots(self) -> int:
        """Slots taken by tasks starting or running (not by reports in flight)."""
        return len(self._in_slots)

    async def stop(self) -> None:
        """Begins the graceful shutdown and waits for it (when the worker is running)."""
        self._stopping.set()
        if self.ready.is_set():
            await self._finished.wait()

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            await self._close()
            self._finished.set()

    async def _run(self) -> None:
        agent_channel = open_channel(self.settings.agent_addr, self.settings)
        task_channel = open_channel(self.settings.task_addr, self.settings)
        session_channel = open_channel(self.settings.session_addr, self.settings)
        context_channel = open_channel(self.settings.context_addr, self.settings)
        self._channels = [agent_channel, task_channel, session_channel, context_channel]
        stub: TaskServiceAsyncStub = task_pb2_grpc.TaskServiceStub(task_channel)
        # Starts, completions, failures, renewals and releases share one long-lived stream.
        tasks = self._work = WorkStream(stub, RPC_TIMEOUT_SECONDS)
        link = AgentLink(agent_pb2_grpc.AgentServiceStub(agent_channel), self.config)
        briefs = SessionBriefs(
            session_pb2_grpc.SessionServiceStub(session_channel),
            context_pb2_grpc.ContextServiceStub(context_channel),
            self.config.name,
        )
        runner = TaskRunner(
            tasks,
            self._executor,
            self.config.workspace,
            self.config.name,
            brief_of=briefs.brief_of,
            checkpoint_of=briefs.checkpoint_of,
            share_of=briefs.share,
            lease_seconds=self.settings.worker_lease_seconds,
        )
        self._nc = await connect_nats(str(self.settings.nats_url), name=self.config.durable)
        # The consumer exists before the agent can be routed work, so no assignment is missed.
        js = self._nc.jetstream()
        sub = await self._subscribe(js)
        stream, durable = self.settings.stream_name, self.config.durable
        lag = Poller("assignments", lambda: watch_pending(js, stream, durable))
        for subject in ABORT_SUBJECTS:
            await self._nc.subscribe(subject, cb=self._on_abort)
        await link.register()
        heart = asyncio.create_task(link.heartbeat_loop(self._current_ids, self._load_changed))
        heart.add_done_callback(self._on_heart_stopped)
        keeper = asyncio.create_task(self._keep_held())
        self.ready.set()
        log.info("worker %s (%s) ready", self.config.name, self.agent_id)
        try:
            async with metrics_served(self.settings, lag):
                await self._fetch_loop(sub, runner)
                await link.drain()
                await self._finish_runs(runner)
        finally:
            for loop in (heart, keeper):
                loop.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop

    def _on_heart_stopped(self, heart: asyncio.Task[None]) -> None:
        # The heartbeat loop ends by itself only when the service drained or removed the agent:
        # then the worker finishes its work and exits, as DRAINING asks.
        if not heart.cancelled():
            self._stopping.set()

    def _current_ids(self) -> list[str]:
        """What the heartbeat names: tasks starting, running or being reported; held ones are
        queued assignments, as they were while still in the consumer."""
        return sorted(t for t in self.runs if t not in self._held)

    async def _subscribe(self, js: JetStreamContext) -> JetStreamContext.PullSubscription:
        config = ConsumerConfig(
            durable_name=self.config.durable,
            ack_policy=AckPolicy.EXPLICIT,
            # A brand-new worker has no past assignments; a known durable keeps its position.
            deliver_policy=DeliverPolicy.NEW,
            filter_subject=assigned_subject(self.agent_id),
            ack_wait=ACK_WAIT_SECONDS,
        )
        await js.add_consumer(self.settings.stream_name, config=config)
        return await js.pull_subscribe_bind(self.config.durable, stream=self.settings.stream_name)

    async def _fetch_loop(self, sub: JetStreamContext.PullSubscription, runner: TaskRunner) -> None:
        while not self._stopping.is_set():
            room = self._room_left()
            if room <= 0:
                self._room.clear()
                await _first_of(self._room, self._stopping)
                continue
            try:
                msgs = await fetch_ready(sub, room, wait=FETCH_TIMEOUT_SECONDS)
            except (NatsTimeoutError, TimeoutError):
                continue
            except Exception as exc:  # NATS reconnecting: keep the running tasks, try again
                log.warning("fetching assignments failed: %s", exc)
                await asyncio.sleep(FETCH_TIMEOUT_SECONDS)
                continue
            for msg in msgs:
                await self._dispatch(msg, runner)

    def _room_left(self) -> int:
        """How many more assignments to fetch: the free slots and the prefetch beyond them,
        less what is held. Reports in flight take no room: their slots are free."""
        wanted = self.config.max_tasks + self._prefetch
        return wanted - len(self._in_slots) - len(self._held)

    async def _dispatch(self, msg: Msg, runner: TaskRunner) -> None:
        assignment = assignment_for(msg.data, self.agent_id)
        if assignment is None:
            await _ack(msg)  # someone else's task: not ours to keep
            return
        current = self.runs.get(assignment.task_id)
        if current is not None:
            if assignment.fencing_token <= current.token:
                await _ack(msg)  # a redelivery of what is held or runs here
                return
            if current.task_id not in self._held:
                await msg.nak(delay=REDELIVER_DELAY_SECONDS)
                return
            # Reassigned while it waited here: the held assignment is stale, the new one holds.
            await self._drop_held(current.task_id)
        run = Run(
            task=assignment.task, touch=msg.in_progress, trace_context=assignment.trace_context
        )
        self.runs[run.task_id] = run
        self._held[run.task_id] = msg
        self._fill_slots(runner)

    def _fill_slots(self, runner: TaskRunner) -> None:
        """Held assignments take the free slots, oldest first; starting and running go on while
        the next ones are fetched. None once shutting down: the drain hands them back."""
        if self._stopping.is_set():
            return
        while self._held and len(self._in_slots) < self.config.max_tasks:
            run, msg = self._unhold()
            self._in_slots.add(run.task_id)
            run.handle = asyncio.create_task(self._launch(run, msg, runner))

    def _unhold(self) -> tuple[Run, Msg]:
        """The oldest held assignment, taken out of the held ones."""
        task_id = next(iter(self._held))
        return self.runs[task_id], self._held.pop(task_id)

    def _free_slot(self, run: Run, runner: TaskRunner) -> None:
        """The run no longer starts or executes: the next held assignment takes its slot."""
        if run.task_id in self._in_slots:
            self._in_slots.discard(run.task_id)
            self._room.set()
            self._fill_slots(runner)

    async def _drop_held(self, task_id: str) -> None:
        """Forgets a held assignment that is no longer this worker's to run (cancelled, paused,
        superseded); its message is acked, as a refused start's is."""
        msg = self._held.pop(task_id)
        del self.runs[task_id]
        self._room.set()
        await _ack(msg)

    async def _launch(self, run: Run, msg: Msg, runner: TaskRunner) -> None:
        """Starts, runs and reports the task in the assignment's trace (a span "task run" when
        spans are made), its session and task ids in the log context."""
        attributes = {"orch.task_id": run.task_id, "orch.agent": self.config.name}
        with (
            log_ids(run.task.session_id, run.task_id),
            continued(run.trace_context, "task run", attributes=attributes),
        ):
            await self._start_and_run(run, msg, runner)

    async def _start_and_run(self, run: Run, msg: Msg, runner: TaskRunner) -> None:
        """Starts and runs the task in its slot, then frees the slot and reports: the report
        (and the message's ack after it) goes on while the slot takes the next task."""
        settled = _ack
        try:
            if self._stopping.is_set():
                # Not started before the shutdown: hand it back now rather than let the lease
                # expire.
                await runner.release(run.task, "worker shutting down")
                return
            try:
                started = await runner.start(run.task)
            except grpc.aio.AioRpcError as exc:
                log.warning("task service unreachable (%s); assignment redelivered", exc.code())
                settled = _nak_soon
                return
            if started is None:
                return
            run.task = started
            self._load_changed.set()
            outcome = await runner.execute(run)
            self._free_slot(run, runner)
            await runner.report(run, outcome)
        finally:
            self._free_slot(run, runner)
            await settled(msg)
            if self.runs.get(run.task_id) is run:
                del self.runs[run.task_id]
            self._load_changed.set()

    async def _on_abort(self, msg: Msg) -> None:
        task = decode_task_event(msg.data)
        run = self.runs.get(task.id) if task is not None else None
        if run is None:
            return
        what = msg.subject.rsplit(".", 1)[-1]
        if run.task_id in self._held:
            log.info("task %s was %s: dropped before it ran", run.task_id, what)
            await self._drop_held(run.task_id)
        else:
            log.info("task %s was %s: killing its run", run.task_id, what)
            run.abort("aborted")

    async def _keep_held(self) -> None:
        """Marks held assignments in progress, as lease renewals do for running ones, so one
        that waits long for a slot is not redelivered meanwhile."""
        while True:
            await asyncio.sleep(HELD_TOUCH_SECONDS)
            for msg in list(self._held.values()):
                with contextlib.suppress(Exception):
                    await msg.in_progress()

    async def _finish_runs(self, runner: TaskRunner) -> None:
        """Hands held assignments back at once, lets running tasks end within the grace period,
        then releases what still runs; reports in flight are waited for, so none is lost."""
        while self._held:
            run, msg = self._unhold()  # shutting down: its launch releases it, never starts it
            run.handle = asyncio.create_task(self._launch(run, msg, runner))
        handles = [r.handle for r in self.runs.values() if r.handle is not None]
        if not handles:
            return
        _, pending = await asyncio.wait(handles, timeout=self.config.grace_seconds)
        for task_id in list(self._in_slots):
            self.runs[task_id].abort("released")
        if pending:
            await asyncio.wait(pending)

    async def _close(self) -> None:
        if self._work is not None:
            await self._work.close()
        if self._nc is not None:
            # Not drain(): draining a bound pull subscription waits out its own timeout (30 s),
            # and nothing is left to deliver. Flushing first still sends the last acks.
            with contextlib.suppress(Exception):
                await self._nc.flush(timeout=2)
            await self._nc.close()
        for channel in self._channels:
            await channel.close()


async def _ack(msg: Msg) -> None:
    # A failed ack (connection gone) only means a redelivery, which fencing makes harmless.
    with contextlib.suppress(Exception):
        await msg.ack()


async def _nak_soon(msg: Msg) -> None:
    with contextlib.suppress(Exception):
        await msg.nak(delay=1.0)


async def _first_of(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
