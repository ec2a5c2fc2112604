"""`orch keys`: the gateway's API keys, managed in its database (an operator's tool).

The database is ORCH_DATABASE_URL, or that of the mesh `orch up` runs from this folder.
`create` prints the key alone on stdout (`KEY=$(orch keys create …)`), everything else on stderr;
the key is shown that once and stored only as a hash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from orchestrator.common.settings import SettingsError, load_client_settings

if TYPE_CHECKING:
    from orchestrator.gateway.security.keys import KeyRecord
    from orchestrator.gateway.security.store import PostgresKeyStore

app = typer.Typer(help="API keys of the gateway: create, list, revoke.", no_args_is_help=True)

T = TypeVar("T")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"orch keys: {message}", err=True)
    return typer.Exit(1)


def _with_store(work: Callable[[PostgresKeyStore], Coroutine[Any, Any, T]]) -> T:
    from orchestrator.gateway.security.store import open_key_store

    try:
        settings = load_client_settings()
    except SettingsError as exc:
        raise _fail(str(exc)) from exc
    if not settings.database_url:
        raise _fail(
            "no database: run this where `orch up` runs (it finds the mesh in the data dir), "
            "or set ORCH_DATABASE_URL"
        )

    async def run() -> T:
        async with open_key_store(settings.database_url or "") as store:
            return await work(store)

    try:
        return asyncio.run(run())
    except (OSError, TimeoutError) as exc:
        raise _fail(f"the database cannot be reached ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:
        raise _fail(f"{type(exc).__name__}: {exc}") from exc


@app.command()
def create(
    name: Annotated[str, typer.Option(help="What the key is for (shown in lists).")],
    scope: Annotated[
        list[str],
        typer.Option(help="read, write or admin; repeat or comma-separate (write includes read)."),
    ],
    expires_in: Annotated[
        str | None, typer.Option(help="Lifetime, e.g. 90d, 12h, 30m (default: never expires).")
    ] = None,
    rate: Annotated[
        float | None, typer.Option(help="Requests per second (default: the gateway's).")
    ] = None,
    burst: Annotated[
        int | None, typer.Option(help="Requests in one burst (default: the gateway's).")
    ] = None,
) -> None:
    """Create a key; prints it once (stdout), then never again."""
    from orchestrator.gateway.security.keys import mint, normalise_scopes, parse_duration

    try:
        scopes = normalise_scopes(part for value in scope for part in value.split(","))
        expires_at = datetime.now(UTC) + parse_duration(expires_in) if expires_in else None
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    if not name.strip() or len(name) > 100:
        raise _fail("--name must be 1 to 100 characters")
    if (rate is not None and rate < 0) or (burst is not None and burst < 1):
        raise _fail("--rate must be >= 0 and --burst >= 1")
    minted = mint()
    record = _with_store(
        lambda store: store.create(
            minted, name=name, scopes=scopes, expires_at=expires_at, rate_limit=rate, burst=burst
        )
    )
    typer.echo(minted.plaintext)
    expiry = f", expires {_when(record.expires_at)}" if record.expires_at else ""
    typer.echo(
        f"created key {record.id} ({record.name}; {', '.join(scopes)}{expiry}). "
        "Store it now: it is not shown again.",
        err=True,
    )


@app.command("list")
def list_keys() -> None:
    """Every key with its scopes and status; never the keys themselves."""
    from rich.console import Console
    from rich.table import Table

    records: list[KeyRecord] = _with_store(lambda store: store.list())
    now = datetime.now(UTC)
    table = Table("ID", "NAME", "SCOPES", "STATUS", "CREATED", "LAST USED", "EXPIRES", "LIMIT")
    for r in records:
        limit = "default" if r.rate_limit is None and r.burst is None else f"{r.rate_limit}/s"
        if r.burst is not None:
            limit = f"{limit} burst {r.burst}"
        table.add_row(
            r.id,
            r.name,
            ",".join(s for s in ("read", "write", "admin") if s in r.scopes),
            r.status(now),
            _when(r.created_at),
            _when(r.last_used_at),
            _when(r.expires_at),
            limit,
        )
    Console(width=160).print(table)


@app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `orch keys list`).")],
) -> None:
    """Revoke a key: gateways refuse it within ORCH_GATEWAY_KEY_CACHE_SECONDS (5 s)."""
    record = _with_store(lambda store: store.revoke(key_id))
    if record is None:
        raise _fail(f"no key {key_id}")
    typer.echo(f"revoked key {record.id} ({record.name}) at {_when(record.revoked_at)}")


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"
