"""`orch session`: create, list, show, steer and watch sessions of a running mesh."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import grpc
import typer
from google.protobuf.json_format import MessageToDict

from orchestrator.api.common.v1 import common_pb2
from orchestrator.api.session.v1 import session_pb2 as pb
from orchestrator.api.session.v1 import session_pb2_grpc
from orchestrator.common.channels import open_channel
from orchestrator.common.settings import Settings, SettingsError, load_client_settings

if TYPE_CHECKING:
    from google.protobuf.timestamp_pb2 import Timestamp

    Stub = session_pb2_grpc.SessionServiceAsyncStub

app = typer.Typer(
    help="Sessions: create, list, show, start/pause/resume/stop, watch.", no_args_is_help=True
)

T = TypeVar("T")
E = TypeVar("E")
ACTOR = "cli"
TERMINAL = frozenset(
    {
        pb.SESSION_STATUS_COMPLETED,
        pb.SESSION_STATUS_PARTIALLY_COMPLETED,
        pb.SESSION_STATUS_FAILED,
        pb.SESSION_STATUS_TIMEOUT,
        pb.SESSION_STATUS_STOPPED,
        pb.SESSION_STATUS_CANCELLED,
    }
)


# --- shared by `orch session` and `orch task` ------------------------------------------------


def fail(message: str) -> typer.Exit:
    typer.echo(f"orch: {message}", err=True)
    return typer.Exit(1)


def describe(exc: BaseException, address: str) -> str:
    """One line for whatever went wrong talking to the service at `address`."""
    if isinstance(exc, grpc.aio.AioRpcError):
        if exc.code() == grpc.StatusCode.UNAVAILABLE:
            return f"no mesh reachable at {address}: start one with `orch up`"
        details = exc.details() or exc.code().name.lower()
        field = dict(exc.trailing_metadata() or ()).get("orch-error-field")
        if isinstance(field, str) and field and field not in details:
            details = f"{field}: {details}"
        return details
    return str(exc) or type(exc).__name__


def client_settings() -> Settings:
    try:
        return load_client_settings()
    except SettingsError as exc:
        raise fail(str(exc)) from exc


def channel_to(address: str) -> grpc.aio.Channel:
    """A channel to a service of the mesh, over TLS when the mesh's settings say so."""
    return open_channel(address, load_client_settings())


def run(address: str, work: Coroutine[object, object, T]) -> T:
    """Runs one client coroutine; any failure becomes one line on stderr and exit 1."""
    try:
        return asyncio.run(work)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as exc:
        raise fail(describe(exc, address)) from exc


def enum_name(name: str, prefix: str) -> str:
    """`SESSION_STATUS_RUNNING`, `SESSION_STATUS_` -> `running`."""
    return name.removeprefix(prefix).lower()


def parse_enum(value: str, enum_value: Callable[[str], E], prefix: str, what: str) -> E:
    try:
        return enum_value(prefix + value.strip().upper().replace("-", "_"))
    except ValueError:
        raise fail(f"unknown {what} {value!r}") from None


def age(ts: Timestamp, now: datetime | None = None) -> str:
    if not ts.seconds and not ts.nanos:
        return "-"
    seconds = int(((now or datetime.now(UTC)) - ts.ToDatetime(tzinfo=UTC)).total_seconds())
    seconds = max(seconds, 0)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# --- the client calls, usable without the command line ----------------------------------------


def _stub(channel: grpc.aio.Channel) -> Stub:
    return session_pb2_grpc.SessionServiceStub(channel)


async def create_session(address: str, request: pb.CreateSessionRequest) -> pb.Session:
    async with channel_to(address) as channel:
        return (await _stub(channel).CreateSession(request, timeout=10)).session


async def list_sessions(
    address: str, statuses: list[pb.SessionStatus.ValueType], tags: list[str], limit: int
) -> list[pb.Session]:
    request = pb.ListSessionsRequest(
        page=common_pb2.PageRequest(page_size=limit), statuses=statuses, tags=tags
    )
    async with channel_to(address) as channel:
        return list((await _stub(channel).ListSessions(request, timeout=10)).sessions)


async def get_session(address: str, session_id: str) -> pb.Session:
    async with channel_to(address) as channel:
        request = pb.GetSessionRequest(session_id=session_id)
        return (await _stub(channel).GetSession(request, timeout=10)).session


async def transition(address: str, action: str, session_id: str, reason: str = "") -> pb.Session:
    """start, pause, resume, stop, cancel or retry one session; the session afterwards."""
    async with channel_to(address) as channel:
        stub = _stub(channel)
        if action == "start":
            reply = await stub.StartSession(
                pb.StartSessionRequest(session_id=session_id, actor=ACTOR), timeout=10
            )
            return reply.session
        if action == "pause":
            paused = await stub.PauseSession(
                pb.PauseSessionRequest(session_id=session_id, actor=ACTOR, reason=reason),
                timeout=10,
            )
            return paused.session
        if action == "resume":
            resumed = await stub.ResumeSession(
                pb.ResumeSessionRequest(session_id=session_id, actor=ACTOR), timeout=10
            )
            return resumed.session
        if action == "stop":
            stopped = await stub.StopSession(
                pb.StopSessionRequest(session_id=session_id, actor=ACTOR, reason=reason),
                timeout=10,
            )
            return stopped.session
        if action == "cancel":
            cancelled = await stub.CancelSession(
                pb.CancelSessionRequest(session_id=session_id, actor=ACTOR, reason=reason),
                timeout=10,
            )
            return cancelled.session
        if action == "retry":
            retried = await stub.RetrySession(
                pb.RetrySessionRequest(session_id=session_id, actor=ACTOR), timeout=10
            )
            return retried.session
    raise ValueError(f"unknown action {action!r}")


def watch_line(reply: pb.WatchSessionResponse, now: datetime | None = None) -> str:
    s = reply.session
    when = (now or datetime.now()).strftime("%H:%M:%S")
    status = enum_name(pb.SessionStatus.Name(s.status), "SESSION_STATUS_")
    event = reply.event_type or "snapshot"
    tasks = f"{s.metrics.tasks_completed}/{s.metrics.tasks_total}"
    return f"{when}  {event:<24} {status:<20} tasks {tasks}"


async def watch_session(
    address: str, session_id: str, emit: Callable[[str], None] = typer.echo
) -> pb.Session | None:
    """Emits one line per change until the session is terminal; its last state."""
    last: pb.Session | None = None
    async with channel_to(address) as channel:
        call = _stub(channel).WatchSession(pb.WatchSessionRequest(session_id=session_id))
        try:
            async for reply in call:
                last = reply.session
                emit(watch_line(reply))
                if reply.session.status in TERMINAL:
                    break
        finally:
            call.cancel()
    return last


# --- the commands -----------------------------------------------------------------------------


def _status(s: pb.Session) -> str:
    return enum_name(pb.SessionStatus.Name(s.status), "SESSION_STATUS_")


def agent_config_of(pairs: list[str], named: dict[str, str | None]) -> dict[str, str]:
    """The session's agent_config from `--config KEY=VALUE` pairs, then the named options that
    were given (they win over a pair of the same key)."""
    config: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise fail(f"--config takes KEY=VALUE; got {pair!r}")
        config[key.strip()] = value
    config.update({k: v for k, v in named.items() if v is not None})
    return config


@app.command()
def create(
    title: Annotated[str, typer.Option(help="Short title of the session.")],
    prompt: Annotated[str, typer.Option(help="The initial prompt.")],
    description: Annotated[str, typer.Option(help="A longer description.")] = "",
    session_type: Annotated[
        str, typer.Option("--type", help="planning|execution|review|debug|integration.")
    ] = "execution",
    priority: Annotated[str, typer.Option(help="critical|high|medium|low|deferred.")] = "medium",
    model: Annotated[str, typer.Option(help="provider/model.")] = "",
    tag: Annotated[list[str] | None, typer.Option(help="A tag; repeat for more.")] = None,
    max_depth: Annotated[
        int | None, typer.Option(help="Decomposition depth (agent_config max_depth).")
    ] = None,
    command: Annotated[
        str | None, typer.Option(help="Shell command for the tasks (agent_config command).")
    ] = None,
    capabilities: Annotated[
        str | None,
        typer.Option(help="What the root task needs, comma-separated (agent_config)."),
    ] = None,
    config: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE into agent_config; repeat for more.")
    ] = None,
    workspace: Annotated[
        str, typer.Option(help="A git repository (path or URL): a worktree per task.")
    ] = "",
    permissions: Annotated[
        str, typer.Option(help="OpenCode permission requests: allow|deny|escalate.")
    ] = "",
    max_duration: Annotated[
        int, typer.Option(help="Seconds before the session times out (60-86400; 0: 3600).")
    ] = 0,
    max_parallel: Annotated[
        int, typer.Option(help="Tasks of the session running at once (0: no limit).")
    ] = 0,
    token_budget: Annotated[int, typer.Option(help="Tokens the session may use (0: none).")] = 0,
    cost_budget: Annotated[float, typer.Option(help="USD the session may spend (0: none).")] = 0.0,
    max_retries: Annotated[
        int | None, typer.Option(help="Retries of a failed session (default 3).")
    ] = None,
    start: Annotated[bool, typer.Option("--start", help="Start it once created.")] = False,
) -> None:
    """Create a session (PENDING, or RUNNING with --start) and print its id."""
    named = {
        "max_depth": None if max_depth is None else str(max_depth),
        "command": command,
        "capabilities": capabilities,
    }
    policy = pb.PERMISSION_POLICY_UNSPECIFIED
    if permissions:
        policy = parse_enum(permissions, pb.PermissionPolicy.Value, "PERMISSION_POLICY_", "policy")
    request = pb.CreateSessionRequest(
        title=title,
        description=description,
        initial_prompt=prompt,
        session_type=parse_enum(session_type, pb.SessionType.Value, "SESSION_TYPE_", "type"),
        priority=parse_enum(priority, pb.SessionPriority.Value, "SESSION_PRIORITY_", "priority"),
        model_identifier=model,
        tags=tag or [],
        agent_config=agent_config_of(config or [], named),
        max_duration_seconds=max_duration,
        limits=pb.SessionLimits(
            max_parallel_tasks=max_parallel,
            token_budget=token_budget,
            cost_budget_usd=cost_budget,
            max_retries=max_retries,
        ),
        permission_policy=policy,
        workspace=workspace,
        created_by=ACTOR,
    )
    address = client_settings().session_addr
    session = run(address, create_session(address, request))
    if start:
        try:
            session = asyncio.run(transition(address, "start", session.id))
        except Exception as exc:
            said = describe(exc, address)
            raise fail(f"session {session.id} was created but not started: {said}") from exc
    typer.echo(f"{session.id}  {_status(session)}  {session.title}")


@app.command("list")
def list_command(
    status: Annotated[
        list[str] | None, typer.Option(help="Only this status; repeat for more.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Only sessions with every tag.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many sessions.")] = 50,
) -> None:
    """The sessions, newest first, as a table."""
    statuses = [
        parse_enum(s, pb.SessionStatus.Value, "SESSION_STATUS_", "status") for s in status or []
    ]
    address = client_settings().session_addr
    sessions = run(address, list_sessions(address, statuses, tag or [], limit))
    from rich.console import Console
    from rich.table import Table

    table = Table("ID", "TITLE", "STATUS", "HEALTH", "TASKS", "AGE")
    now = datetime.now(UTC)
    for s in sessions:
        table.add_row(
            s.id,
            s.title,
            _status(s),
            f"{s.health_score:.2f}",
            f"{s.metrics.tasks_completed}/{s.metrics.tasks_total}",
            age(s.created_at, now),
        )
    Console(width=200).print(table)


@app.command()
def show(session_id: Annotated[str, typer.Argument(help="Session id.")]) -> None:
    """The key fields of one session and its latest checkpoint."""
    address = client_settings().session_addr
    s = run(address, get_session(address, session_id))
    m = s.metrics
    rows = [
        ("id", s.id),
        ("title", s.title),
        ("status", _status(s) + (f" ({s.status_reason})" if s.status_reason else "")),
        ("type", enum_name(pb.SessionType.Name(s.session_type), "SESSION_TYPE_")),
        ("priority", enum_name(pb.SessionPriority.Name(s.priority), "SESSION_PRIORITY_")),
        ("model", s.model_identifier or "-"),
        ("health", f"{s.health_score:.2f}"),
        ("tasks", f"{m.tasks_completed}/{m.tasks_total} done, {m.tasks_failed} failed"),
        ("tags", ", ".join(s.tags) or "-"),
        ("agent config", ", ".join(f"{k}={v}" for k, v in sorted(s.agent_config.items())) or "-"),
        ("workspace", s.workspace or "-"),
        ("permissions", _policy(s)),
        ("limits", _limits(s)),
        ("usage", _usage(s)),
        ("age", age(s.created_at)),
        ("prompt", s.initial_prompt),
    ]
    if s.error:
        rows.append(("error", s.error))
    cp = s.latest_checkpoint
    if cp.sequence:
        data = json.dumps(MessageToDict(cp.data), sort_keys=True)
        rows.append(("checkpoint", f"#{cp.sequence} by {cp.created_by or '-'}: {data}"))
    else:
        rows.append(("checkpoint", "-"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        typer.echo(f"{key:<{width}}  {value}")


def _policy(s: pb.Session) -> str:
    name = enum_name(pb.PermissionPolicy.Name(s.permission_policy), "PERMISSION_POLICY_")
    return "-" if name == "unspecified" else name


def _limits(s: pb.Session) -> str:
    """The session's limits as a user would set them; unlimited ones are left out."""
    lim = s.limits
    parts = [f"max duration {s.max_duration_seconds} s"]
    if lim.max_parallel_tasks:
        parts.append(f"{lim.max_parallel_tasks} tasks at once")
    if lim.token_budget:
        parts.append(f"{lim.token_budget:,} tokens")
    if lim.cost_budget_usd:
        parts.append(f"${lim.cost_budget_usd:,.2f}")
    retries = lim.max_retries if lim.HasField("max_retries") else 3
    parts.append(f"{s.metrics.retry_count}/{retries} retries")
    return ", ".join(parts)


def _usage(s: pb.Session) -> str:
    u = s.metrics.usage
    tokens = u.input_tokens + u.output_tokens + u.reasoning_tokens
    return f"{tokens:,} tokens (in {u.input_tokens:,}, out {u.output_tokens:,}), ${u.cost_usd:,.4f}"


def _lifecycle(action: str, session_id: str, reason: str) -> None:
    address = client_settings().session_addr
    s = run(address, transition(address, action, session_id, reason))
    typer.echo(f"{s.id}  {_status(s)}")


ReasonOption = Annotated[str, typer.Option(help="Why (recorded where the service keeps one).")]
IdArgument = Annotated[str, typer.Argument(help="Session id.")]


@app.command()
def start(session_id: IdArgument, reason: ReasonOption = "") -> None:
    """PENDING|QUEUED -> RUNNING."""
    _lifecycle("start", session_id, reason)


@app.command()
def pause(session_id: IdArgument, reason: ReasonOption = "") -> None:
    """RUNNING -> PAUSED."""
    _lifecycle("pause", session_id, reason)


@app.command()
def resume(session_id: IdArgument, reason: ReasonOption = "") -> None:
    """PAUSED|DEGRADED -> RUNNING."""
    _lifecycle("resume", session_id, reason)


@app.command()
def stop(session_id: IdArgument, reason: ReasonOption = "") -> None:
    """RUNNING|PAUSED|DEGRADED -> STOPPED."""
    _lifecycle("stop", session_id, reason)


@app.command()
def cancel(session_id: IdArgument, reason: ReasonOption = "") -> None:
    """PENDING|QUEUED|PAUSED -> CANCELLED."""
    _lifecycle("cancel", session_id, reason)


@app.command()
def retry(session_id: IdArgument, reason: ReasonOption = "") -> None:
    """FAILED|TIMEOUT -> PENDING, resuming from the latest checkpoint."""
    _lifecycle("retry", session_id, reason)


@app.command()
def watch(session_id: IdArgument) -> None:
    """One line per change (time, event, status, tasks) until the session ends or Ctrl-C."""
    address = client_settings().session_addr
    try:
        run(address, watch_session(address, session_id))
    except typer.Exit as exc:
        if exc.exit_code == 130:  # Ctrl-C: a normal way to stop watching
            return
        raise
