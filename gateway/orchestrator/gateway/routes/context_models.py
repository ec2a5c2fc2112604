"""Request bodies and queries of the context routes, and the response shapes /docs shows.

Field names are context.proto's, except PATCH's operations, which read `{"op", "path", "value"}`
(JSON-Patch-like) and become `ContextOperation`s. Path syntax, scope/owner rules and TTLs are the
context service's to check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import Field, create_model, model_validator

from orchestrator.api.context.v1 import context_pb2 as pb
from orchestrator.gateway.routes.common import ACTOR, PageQuery, StrictBody, page_model
from orchestrator.gateway.schema import enum_literal, message_model

if TYPE_CHECKING:
    ScopeName = str
    StrategyName = str
    OperationName = str
else:
    ScopeName = enum_literal(pb.ContextScope.DESCRIPTOR)
    StrategyName = enum_literal(pb.MergeStrategy.DESCRIPTOR)
    OperationName = enum_literal(pb.ContextOperationType.DESCRIPTOR)

_VERSION = "Refused with 409 (`aborted`) unless the context is at this version."
_OWNER = "The session or agent id for those scopes; omitted for global"


class CreateContextBody(StrictBody):
    scope: ScopeName
    owner_id: str | None = Field(None, description=_OWNER)
    name: str | None = Field(None, description="Omitted = the owner's default context")
    data: dict[str, Any] | None = None
    ttl_seconds: int | None = Field(None, description="temporary only; default: the service's")
    actor: str | None = Field(None, description=ACTOR)
    context_id: UUID | None = Field(
        None, description="Client-chosen id: repeating the same create returns the same context"
    )


class ContextQuery(PageQuery):
    scope: ScopeName | None = None
    owner_id: str | None = None
    owned_only: bool = Field(False, description="Leave out contexts merely shared with the owner")


class HistoryQuery(PageQuery):
    path_prefix: str = Field("", description="Changes of this path and below; empty = all")
    after_version: int = Field(0, ge=0, description="Only changes that made a later version")
    newest_first: bool = False


class OperationBody(StrictBody):
    op: OperationName
    path: str = Field(description="Dot path, e.g. `config.model`")
    value: Any = Field(None, description="`set` only, required there; null stores JSON null")

    @model_validator(mode="after")
    def _value_only_for_set(self) -> OperationBody:
        given = "value" in self.model_fields_set
        if self.op == "set" and not given:
            raise ValueError("`set` needs a value (null stores JSON null)")
        if self.op != "set" and given:
            raise ValueError(f"`{self.op}` takes no value")
        return self


class UpdateContextBody(StrictBody):
    expected_version: int | None = Field(None, description=_VERSION)
    operations: list[OperationBody] = Field(description="Applied in order, all or none")
    changed_by: str | None = None


class MergeBody(StrictBody):
    source_context_id: UUID
    target_context_id: UUID = Field(description="The only context written")
    strategy: StrategyName
    expected_version: int | None = Field(None, description="Of the target. " + _VERSION)
    actor: str | None = Field(None, description=ACTOR)


class ShareBody(StrictBody):
    scope: ScopeName
    owner_id: str | None = Field(None, description=_OWNER)
    expected_version: int | None = Field(None, description=_VERSION)
    actor: str | None = Field(None, description=ACTOR)


class CloneBody(StrictBody):
    scope: ScopeName
    owner_id: str | None = Field(None, description=_OWNER)
    name: str | None = None
    ttl_seconds: int | None = Field(None, description="temporary only; default: the service's")
    actor: str | None = Field(None, description=ACTOR)
    clone_id: UUID | None = Field(
        None, description="Client-chosen id: repeating the same clone returns the same one"
    )


# Response shapes: documentation only, the routes return the codec's JSON unvalidated.
ContextJson = message_model(pb.Context.DESCRIPTOR)
ContextPageJson = page_model("ContextPage", "contexts", ContextJson)
ChangeJson = message_model(pb.ContextChange.DESCRIPTOR)
HistoryPageJson = page_model("ContextHistoryPage", "changes", ChangeJson)
UpdatedContextJson = create_model(
    "UpdatedContext",
    __base__=ContextJson,
    changes=(list[ChangeJson], ...),  # type: ignore[valid-type]
)
MergedJson = message_model(pb.MergeContextsResponse.DESCRIPTOR)
DiffJson = message_model(pb.DiffContextsResponse.DESCRIPTOR)
ContextValueJson = create_model(
    "ContextValue",
    __base__=ContextJson,
    path=(str | None, None),
    value=(Any, None),
)
