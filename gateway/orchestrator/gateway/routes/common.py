"""What every resource router shares: the one-call helper, strict bodies, pages, taxonomy enums.

A route is JSON in → one gRPC call → JSON out; the helpers here are that pipeline's pieces, so
the routers only say which fields go where.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi.responses import JSONResponse
from google.protobuf.message import Message
from grpc import aio
from pydantic import BaseModel, ConfigDict, Field, create_model

from orchestrator.api.common.v1 import common_pb2, taxonomy_pb2
from orchestrator.gateway import codec
from orchestrator.gateway.clients import ServiceClients
from orchestrator.gateway.schema import enum_literal

if TYPE_CHECKING:
    CapabilityName = str
    ComplexityName = str
else:
    CapabilityName = enum_literal(taxonomy_pb2.Capability.DESCRIPTOR)
    ComplexityName = enum_literal(taxonomy_pb2.TaskComplexity.DESCRIPTOR)

Json = dict[str, Any]
Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)

ACTOR = "Who asks, recorded with the change"


class StrictBody(BaseModel):
    # A misspelt field is an error, not silently dropped.
    model_config = ConfigDict(extra="forbid")


class PageQuery(BaseModel):
    page_size: int = Field(0, ge=0, le=1000, description="0 = the service's default")
    page_token: str = Field("", description="`next_page_token` of the previous page")


def fields(body: BaseModel | None) -> Json:
    """The fields a client gave, as JSON (UUIDs as strings); unset and null ones left out."""
    return body.model_dump(mode="json", exclude_none=True) if body is not None else {}


def page_request(page: PageQuery) -> Json:
    return {"page_size": page.page_size, "page_token": page.page_token}


async def call(
    clients: ServiceClients, rpc: aio.UnaryUnaryMultiCallable[Req, Resp], request: Req
) -> Resp:
    return await rpc(request, timeout=clients.timeout)


async def call_with(
    clients: ServiceClients,
    rpc: aio.UnaryUnaryMultiCallable[Req, Resp],
    request: Req,
    data: Json,
) -> Resp:
    """Fills `request` from `data` (through the codec, so enums and nested fields map) and calls."""
    codec.message_from_json(data, request)
    return await call(clients, rpc, request)


def page_json(key: str, items: Iterable[Message], page: common_pb2.PageResponse) -> Json:
    """A list reply flattened: `{key: [...], "next_page_token", "total_size"}`."""
    return {
        key: [codec.message_to_json(item) for item in items],
        "next_page_token": page.next_page_token,
        "total_size": page.total_size,
    }


def json_reply(body: Json) -> JSONResponse:
    """`body`, the codec's JSON, sent as it is: returned as a plain dict, FastAPI would walk it
    again (`jsonable_encoder`, 0.1 s for the graph of a 1,000-task session)."""
    return JSONResponse(body)


def page_model(name: str, key: str, item: type[BaseModel]) -> type[BaseModel]:
    """The documented shape of `page_json(key, …)`."""
    model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        name,
        **{key: (list[item], ...)},  # type: ignore[valid-type]
        next_page_token=(str, ...),
        total_size=(int, ...),
    )
    return model


def documented(model: Any, status: int = 200) -> dict[int | str, dict[str, Any]]:
    """`responses=` metadata naming the model a route's JSON follows."""
    return {status: {"model": model}}
