"""The worker's calls about its tasks, over one long-lived TaskService.Work stream.

Start, complete, fail, renew and release go out as messages on a stream the worker keeps open,
many in flight at once, each answered by id. A message costs a fraction of a unary call, and
calls from all the worker's slots share the stream. To the runner they look like the unary
calls: each returns the call's response or raises `grpc.aio.AioRpcError` with the status the
unary call would have (UNAVAILABLE when the stream broke: the caller's retry then opens a new
one, and the fencing token makes a repeated call harmless).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from typing import TYPE_CHECKING, Any

import grpc

from orchestrator.api.task.v1 import task_pb2 as pb

if TYPE_CHECKING:
    from orchestrator.api.task.v1.task_pb2_grpc import TaskServiceAsyncStub

log = logging.getLogger(__name__)

_CODES = {code.value[0]: code for code in grpc.StatusCode}


class WorkStream:
    def __init__(self, stub: TaskServiceAsyncStub, timeout_seconds: float) -> None:
        self._stub = stub
        # A call unanswered this long fails with DEADLINE_EXCEEDED, as a unary call's would.
        self._timeout = timeout_seconds
        self._stream: _Stream | None = None
        self._ids = itertools.count(1)

    async def StartTask(self, request: pb.StartTaskRequest) -> pb.StartTaskResponse:
        reply = await self._ask(pb.WorkRequest(start=request))
        return reply.start

    async def CompleteTask(self, request: pb.CompleteTaskRequest) -> pb.CompleteTaskResponse:
        reply = await self._ask(pb.WorkRequest(complete=request))
        return reply.complete

    async def FailTask(self, request: pb.FailTaskRequest) -> pb.FailTaskResponse:
        reply = await self._ask(pb.WorkRequest(fail=request))
        return reply.fail

    async def RenewLease(self, request: pb.RenewLeaseRequest) -> pb.RenewLeaseResponse:
        reply = await self._ask(pb.WorkRequest(renew=request))
        return reply.renew

    async def ReleaseTask(self, request: pb.ReleaseTaskRequest) -> pb.ReleaseTaskResponse:
        reply = await self._ask(pb.WorkRequest(release=request))
        return reply.release

    async def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.close()

    async def _ask(self, request: pb.WorkRequest) -> pb.WorkResponse:
        request.id = next(self._ids)
        try:
            async with asyncio.timeout(self._timeout):
                if self._stream is None or self._stream.broken:
                    self._stream = _Stream(self._stub.Work())
                reply = await self._stream.ask(request)
        except TimeoutError as exc:
            raise _error(grpc.StatusCode.DEADLINE_EXCEEDED, "no answer on the work stream") from exc
        if reply.WhichOneof("outcome") == "error":
            e = reply.error
            raise _error(_CODES.get(e.code, grpc.StatusCode.UNKNOWN), e.message)
        return reply


class _Stream:
    """One open Work call: requests written one at a time, answers matched by id."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self._waiting: dict[int, asyncio.Future[pb.WorkResponse]] = {}
        self._writing = asyncio.Lock()
        self.broken = False
        self._reader = asyncio.create_task(self._read(), name="work-stream")

    async def ask(self, request: pb.WorkRequest) -> pb.WorkResponse:
        answer: asyncio.Future[pb.WorkResponse] = asyncio.get_running_loop().create_future()
        self._waiting[request.id] = answer
        try:
            try:
                async with self._writing:
                    if self.broken:
                        raise _error(grpc.StatusCode.UNAVAILABLE, "the work stream broke")
                    await self._call.write(request)
            except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError) as exc:
                self._waiting.pop(request.id, None)  # it fails here, with this error
                self._break(f"the work stream broke: {exc}")
                if answer.done() and not answer.cancelled():
                    answer.exception()  # failed by a concurrent break: seen, and superseded
                if isinstance(exc, grpc.aio.AioRpcError):
                    raise
                raise _error(grpc.StatusCode.UNAVAILABLE, str(exc)) from exc
            return await answer
        finally:
            self._waiting.pop(request.id, None)

    async def close(self) -> None:
        self._break("the work stream was closed")
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def _read(self) -> None:
        reason = "the task service ended the work stream"
        try:
            while True:
                reply = await self._call.read()
                if reply is grpc.aio.EOF:
                    break
                answer = self._waiting.get(reply.id)
                if answer is not None and not answer.done():
                    answer.set_result(reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = f"the work stream broke: {exc}"
        self._break(reason)

    def _break(self, reason: str) -> None:
        """Its calls in flight fail with UNAVAILABLE; the next call opens a new stream."""
        if not self.broken:
            self.broken = True
            self._call.cancel()
            log.info("%s; a new one opens on the next call", reason)
        waiting, self._waiting = self._waiting, {}
        for answer in waiting.values():
            if not answer.done():
                answer.set_exception(_error(grpc.StatusCode.UNAVAILABLE, reason))


def _error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)
