"""`orch task`: list a session's tasks, approve or reject the ones awaiting review."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import grpc
import typer

from orchestrator.api.common.v1 import common_pb2
from orchestrator.api.task.v1 import task_pb2 as pb
from orchestrator.api.task.v1 import task_pb2_grpc
from orchestrator.cli.session import ACTOR, channel_to, client_settings, enum_name, run

if TYPE_CHECKING:
    Stub = task_pb2_grpc.TaskServiceAsyncStub

app = typer.Typer(help="Tasks: list a session's, approve or reject reviews.", no_args_is_help=True)


def _stub(channel: grpc.aio.Channel) -> Stub:
    return task_pb2_grpc.TaskServiceStub(channel)


async def list_tasks(address: str, session_id: str) -> list[pb.Task]:
    tasks: list[pb.Task] = []
    token = ""
    async with channel_to(address) as channel:
        stub = _stub(channel)
        while True:
            request = pb.ListTasksRequest(
                session_id=session_id, page=common_pb2.PageRequest(page_size=200, page_token=token)
            )
            reply = await stub.ListTasks(request, timeout=10)
            tasks += reply.tasks
            token = reply.page.next_page_token
            if not token:
                return tasks


async def approve_task(address: str, task_id: str, comment: str = "") -> pb.Task:
    async with channel_to(address) as channel:
        request = pb.ApproveTaskRequest(task_id=task_id, actor=ACTOR, comment=comment)
        return (await _stub(channel).ApproveTask(request, timeout=10)).task


async def reject_task(address: str, task_id: str, comment: str) -> pb.Task:
    async with channel_to(address) as channel:
        request = pb.RejectTaskRequest(task_id=task_id, actor=ACTOR, comment=comment)
        return (await _stub(channel).RejectTask(request, timeout=10)).task


def _status(t: pb.Task) -> str:
    return enum_name(pb.TaskStatus.Name(t.status), "TASK_STATUS_")


@app.command("list")
def list_command(
    session: Annotated[str, typer.Option("--session", help="Session id.")],
) -> None:
    """The tasks of one session, as a table."""
    address = client_settings().task_addr
    tasks = run(address, list_tasks(address, session))
    from rich.console import Console
    from rich.table import Table

    table = Table("ID", "TITLE", "STATUS", "AGENT", "ATTEMPTS")
    for t in tasks:
        attempts = f"{t.attempt_count}/{t.max_attempts}" if t.max_attempts else str(t.attempt_count)
        status = _status(t) + (" (awaiting approval)" if t.awaiting_approval else "")
        table.add_row(t.id, t.title, status, t.assigned_agent_id or "-", attempts)
    Console(width=200).print(table)


@app.command()
def approve(
    task_id: Annotated[str, typer.Argument(help="Task id.")],
    comment: Annotated[str, typer.Option(help="Reviewer comment.")] = "",
) -> None:
    """Approve a task awaiting approval (BLOCKED -> COMPLETED)."""
    address = client_settings().task_addr
    t = run(address, approve_task(address, task_id, comment))
    typer.echo(f"{t.id}  {_status(t)}")


@app.command()
def reject(
    task_id: Annotated[str, typer.Argument(help="Task id.")],
    comment: Annotated[str, typer.Option(help="What the agent must change on the next run.")],
) -> None:
    """Reject a task awaiting approval (BLOCKED -> READY, the comment joins its prompt)."""
    address = client_settings().task_addr
    t = run(address, reject_task(address, task_id, comment))
    typer.echo(f"{t.id}  {_status(t)}")
