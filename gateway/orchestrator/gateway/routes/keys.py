"""`/api/v1/keys`: API key management, for admin keys (the guard checks the scope).

The secret of a key is in the reply to its creation only; lists and reads never carry it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, Field

from orchestrator.gateway.errors import ERROR_RESPONSES
from orchestrator.gateway.resources import Resources, ResourcesDep
from orchestrator.gateway.routes.common import StrictBody
from orchestrator.gateway.security.keys import KeyRecord, Scope, mint, normalise_scopes
from orchestrator.gateway.security.store import KeyStore

router = APIRouter(prefix="/api/v1/keys", tags=["keys"], responses=ERROR_RESPONSES)

KeyId = Annotated[str, Path(description="The key's id (the public part of the key)")]


class CreateKeyBody(StrictBody):
    name: str = Field(min_length=1, max_length=100, description="What the key is for")
    scopes: list[Scope] = Field(min_length=1, description="read, write and/or admin")
    expires_in_seconds: int | None = Field(None, ge=60, description="None: never expires")
    rate_limit: float | None = Field(None, ge=0, description="Requests/s; None: the default")
    burst: int | None = Field(None, ge=1, description="None: the gateway's default")


class KeyJson(BaseModel):
    id: str
    name: str
    scopes: list[Scope]
    status: str = Field(description="active, expired or revoked")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="To the minute")
    revoked_at: datetime | None
    rate_limit: float | None
    burst: int | None


class CreatedKeyJson(KeyJson):
    key: str = Field(description="The key itself: shown this once, store it now")


class KeyListJson(BaseModel):
    keys: list[KeyJson]


def key_json(record: KeyRecord, now: datetime | None = None) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "scopes": list(normalise_scopes(record.scopes)),
        "status": record.status(now or datetime.now(UTC)),
        "created_at": record.created_at.isoformat(),
        "expires_at": record.expires_at.isoformat() if record.expires_at else None,
        "last_used_at": record.last_used_at.isoformat() if record.last_used_at else None,
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
        "rate_limit": record.rate_limit,
        "burst": record.burst,
    }


def _store(resources: Resources) -> KeyStore:
    if resources.settings.gateway_auth == "off":
        raise HTTPException(404, "API keys are off on this gateway (ORCH_GATEWAY_AUTH=off)")
    if resources.api_keys is None:
        raise HTTPException(503, "API keys need PostgreSQL (ORCH_DATABASE_URL)")
    return resources.api_keys


@router.post("", status_code=201, response_model=None, responses={201: {"model": CreatedKeyJson}})
async def create_key(body: CreateKeyBody, resources: ResourcesDep) -> dict[str, Any]:
    """A new key; 201 with it, `key` included (the only time it is shown)."""
    minted = mint()
    expires = (
        datetime.now(UTC) + timedelta(seconds=body.expires_in_seconds)
        if body.expires_in_seconds
        else None
    )
    record = await _store(resources).create(
        minted,
        name=body.name,
        scopes=normalise_scopes(body.scopes),
        expires_at=expires,
        rate_limit=body.rate_limit,
        burst=body.burst,
    )
    return {**key_json(record), "key": minted.plaintext}


@router.get("", response_model=None, responses={200: {"model": KeyListJson}})
async def list_keys(resources: ResourcesDep) -> dict[str, Any]:
    """Every key, revoked and expired ones included, oldest first; never their secrets."""
    now = datetime.now(UTC)
    return {"keys": [key_json(r, now) for r in await _store(resources).list()]}


@router.get("/{key_id}", response_model=None, responses={200: {"model": KeyJson}})
async def get_key(key_id: KeyId, resources: ResourcesDep) -> dict[str, Any]:
    record = await _store(resources).get(key_id)
    if record is None:
        raise HTTPException(404, f"API key {key_id} does not exist")
    return key_json(record)


@router.delete("/{key_id}", response_model=None, responses={200: {"model": KeyJson}})
async def revoke_key(key_id: KeyId, resources: ResourcesDep) -> dict[str, Any]:
    """Revokes the key: this gateway refuses it at once, every other replica within
    ORCH_GATEWAY_KEY_CACHE_SECONDS. Revoking again changes nothing."""
    record = await _store(resources).revoke(key_id)
    if record is None:
        raise HTTPException(404, f"API key {key_id} does not exist")
    if resources.authenticator is not None:
        resources.authenticator.forget(key_id)
    return key_json(record)
