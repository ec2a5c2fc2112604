"""grpc.aio server bootstrap: one interceptor (errors, metrics, spans), health, reflection,
graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import nats.errors
import redis.exceptions
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection
from opentelemetry.trace import SpanKind

from orchestrator.common import errors
from orchestrator.common.logs import session_id_var, task_id_var
from orchestrator.common.metrics import RPC_DURATION
from orchestrator.common.settings import Settings
from orchestrator.common.telemetry import TRACEPARENT, TRACESTATE, carry, continued, tracer
from orchestrator.common.tls import server_credentials

log = logging.getLogger(__name__)

# The one table from domain errors to gRPC status codes.
STATUS_OF: dict[type[errors.OrchestratorError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
}

ERROR_CODE_KEY = "orch-error-code"
ERROR_FIELD_KEY = "orch-error-field"

# A server the call needed was down or restarting (PostgreSQL, Redis, NATS): the caller may try
# again, so the call ends UNAVAILABLE, never as an internal error (which callers do not retry).
_UNREACHABLE: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, broken
    TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutting down, starting up
    asyncpg.exceptions.TooManyConnectionsError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    nats.errors.ConnectionClosedError,
    nats.errors.NoServersError,
    nats.errors.StaleConnectionError,
)


def known_error(exc: BaseException) -> errors.OrchestratorError | None:
    """What a failure of a call says to its caller: a domain error as it is, a failure to reach
    a server as UNAVAILABLE; None for anything else (a bug: an internal error)."""
    if isinstance(exc, errors.OrchestratorError):
        return exc
    closed = isinstance(exc, asyncpg.exceptions.InterfaceError) and "closed" in str(exc)
    if not (closed or isinstance(exc, _UNREACHABLE)):
        return None
    what = {"asyncpg": "PostgreSQL", "redis": "Redis", "nats": "NATS"}.get(
        type(exc).__module__.partition(".")[0], "a server it needs"
    )
    return errors.Unavailable(f"{what} cannot be reached right now ({type(exc).__name__}); retry")


def status_of(exc: errors.OrchestratorError) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return grpc.StatusCode.INTERNAL


if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[Any, Any]
    Handler = grpc.RpcMethodHandler[Any, Any]


async def _abort(context: Context, exc: errors.OrchestratorError) -> None:
    metadata = [(ERROR_CODE_KEY, exc.code)]
    if exc.field:
        metadata.append((ERROR_FIELD_KEY, exc.field))
    await context.abort(status_of(exc), exc.message, trailing_metadata=tuple(metadata))


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Every call served goes through here once: an `OrchestratorError` raised anywhere below a
    servicer becomes its status code; the call's duration and code go to
    `orch_rpc_duration_seconds`; a unary call runs in a span continuing the caller's trace (or,
    without spans, hands the caller's trace context on) with the session and task ids of its
    request in the log context. Streams of requests (the task service's Work) get the metric
    only: a span as long as a worker's life would say nothing."""

    def __init__(self) -> None:
        # By method path: the handler as registered and its wrapped twin, made once.
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        path = handler_call_details.method
        known = self._wrapped.get(path)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = _wrap_handler(handler, _Method(path))
        self._wrapped[path] = (handler, wrapped)
        return wrapped


def _wrap_handler(handler: Handler, method: _Method) -> Handler:
    codecs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            _wrap_unary(handler.unary_unary, method), **codecs
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _wrap_stream(handler.unary_stream, method), **codecs
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            _wrap_unary(handler.stream_unary, method, traced=False), **codecs
        )
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(
            _wrap_stream(handler.stream_stream, method, traced=False), **codecs
        )
    return handler


class _Method:
    """One RPC method's metric children (by code) and span name, made once."""

    def __init__(self, path: str) -> None:
        self.name = path.lstrip("/")
        self.service, _, self.method = self.name.partition("/")
        self._by_code: dict[str, Any] = {}

    def observe(self, code: str, seconds: float) -> None:
        child = self._by_code.get(code)
        if child is None:
            child = self._by_code[code] = RPC_DURATION.labels(self.service, self.method, code)
        child.observe(seconds)

    @contextlib.contextmanager
    def serving(self, request: Any, context: Context) -> Iterator[None]:
        """The call's span (when spans are made) and its ids in the log context."""
        _set_log_ids(request)
        carrier = _trace_metadata(context)
        if tracer() is None:
            carry(carrier)
            yield
            return
        attributes = {"rpc.system": "grpc", "rpc.service": self.service, "rpc.method": self.method}
        with continued(carrier, self.name, kind=SpanKind.SERVER, attributes=attributes):
            yield


def _trace_metadata(context: Context) -> dict[str, str]:
    metadata = context.invocation_metadata() or ()
    return {k: v for k, v in metadata if k in _TRACE_KEYS and isinstance(v, str)}


_TRACE_KEYS = frozenset({TRACEPARENT, TRACESTATE})
# Which of the log context's ids each request type carries, found once per type.
_ID_FIELDS: dict[type, tuple[tuple[contextvars.ContextVar[str], str], ...]] = {}


def _set_log_ids(request: Any) -> None:
    kind = type(request)
    fields = _ID_FIELDS.get(kind)
    if fields is None:
        names = getattr(getattr(request, "DESCRIPTOR", None), "fields_by_name", {})
        fields = _ID_FIELDS[kind] = tuple(
            (var, name)
            for var, name in ((session_id_var, "session_id"), (task_id_var, "task_id"))
            if name in names
        )
    for var, name in fields:
        value = getattr(request, name)
        if value:
            var.set(value)


def _code_name(code: grpc.StatusCode | None) -> str:
    return "OK" if code is None else code.name


@contextlib.asynccontextmanager
async def _served(method: _Method, context: Context) -> AsyncIterator[None]:
    """One call's outcome: an `OrchestratorError` (or a server out of reach, see
    `known_error`) becomes its status code, and the call's duration goes to the metric under
    the code it ended with."""
    started = time.perf_counter()
    code = "UNKNOWN"
    try:
        yield
        code = _code_name(context.code())
    except (asyncio.CancelledError, GeneratorExit):
        code = "CANCELLED"
        raise
    except grpc.aio.AbortError:
        code = _code_name(context.code())
        raise
    except Exception as exc:
        if (known := known_error(exc)) is None:
            raise
        if known is not exc:
            log.warning("%s: %s", method.name, known.message)
        code = status_of(known).name
        await _abort(context, known)
    finally:
        method.observe(code, time.perf_counter() - started)


def _scope(method: _Method, request: Any, context: Context, traced: bool) -> Any:
    return method.serving(request, context) if traced else contextlib.nullcontext()


def _wrap_unary(
    behavior: Callable[..., Any], method: _Method, *, traced: bool = True
) -> Callable[..., Any]:
    async def wrapped(request: Any, context: Context) -> Any:
        async with _served(method, context):
            with _scope(method, request, context, traced):
                return await behavior(request, context)

    return wrapped


def _wrap_stream(
    behavior: Callable[..., Any], method: _Method, *, traced: bool = True
) -> Callable[..., Any]:
    """Streams come as async generators or as coroutines that call context.write()."""
    if not inspect.isasyncgenfunction(behavior):
        return _wrap_unary(behavior, method, traced=traced)

    async def wrapped(request: Any, context: Context) -> AsyncIterator[Any]:
        async with _served(method, context):
            with _scope(method, request, context, traced):
                async for item in behavior(request, context):
                    yield item

    return wrapped


class GrpcServer:
    """A grpc.aio server with health (NOT_SERVING while draining) and reflection; it serves
    TLS (and asks clients for certificates) when `settings` say so, plaintext otherwise."""

    def __init__(self, address: str, settings: Settings | None = None) -> None:
        self.address = address
        # Read now, so a bad certificate or key fails the process before anything starts.
        self._credentials = server_credentials(settings) if settings is not None else None
        self._client_auth = settings is not None and settings.grpc_tls_client_auth == "require"
        self.server = grpc.aio.server(
            interceptors=[ErrorInterceptor()],
            options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", 16 << 20)],
        )
        self.health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._names: list[str] = []
        self.port = 0

    def add(
        self, register: Callable[[Any, grpc.aio.Server], None], servicer: Any, name: str
    ) -> None:
        register(servicer, self.server)
        self._names.append(name)

    async def start(self) -> int:
        reflection.enable_server_reflection(
            [
                *self._names,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            self.server,
        )
        if self._credentials is None:
            self.port = self.server.add_insecure_port(self.address)
        else:
            self.port = self.server.add_secure_port(self.address, self._credentials)
        if self.port == 0:
            raise OSError(f"cannot listen on {self.address}: the address is in use or invalid")
        await self.server.start()
        for name in ["", *self._names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("gRPC listening on %s (%s)", self.address, self._transport())
        return self.port

    def _transport(self) -> str:
        if self._credentials is None:
            return "plaintext"
        return "TLS, client certificates required" if self._client_auth else "TLS"

    async def stop(self, grace: float) -> None:
        """Says NOT_SERVING first so balancers stop sending, then lets calls in flight finish."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
