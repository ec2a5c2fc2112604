"""grpc.aio server bootstrap: one error-mapping interceptor, health, reflection, graceful stop."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from orchestrator.common import errors
from orchestrator.common.settings import Settings
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
    """Turns `OrchestratorError` raised anywhere below a servicer into its status code."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        codecs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(_wrap_unary(handler.unary_unary), **codecs)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(handler.unary_stream),
                **codecs,
            )
        return handler


def _wrap_unary(behavior: Callable[..., Any]) -> Callable[..., Any]:
    async def wrapped(request: Any, context: Context) -> Any:
        try:
            return await behavior(request, context)
        except errors.OrchestratorError as exc:
            await _abort(context, exc)

    return wrapped


def _wrap_stream(behavior: Callable[..., Any]) -> Callable[..., Any]:
    """Streams come as async generators or as coroutines that call context.write()."""
    if not inspect.isasyncgenfunction(behavior):
        return _wrap_unary(behavior)

    async def wrapped(request: Any, context: Context) -> AsyncIterator[Any]:
        try:
            async for item in behavior(request, context):
                yield item
        except errors.OrchestratorError as exc:
            await _abort(context, exc)

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
