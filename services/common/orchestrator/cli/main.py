"""`orch`: the command line of the orchestrator."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer

from orchestrator.cli import agent, keys, session, task
from orchestrator.common.settings import SettingsError, load_settings

app = typer.Typer(
    help="Industrial Orchestrator: run fleets of coding agents.", no_args_is_help=True
)
app.add_typer(agent.app, name="agent")
app.add_typer(session.app, name="session")
app.add_typer(task.app, name="task")
app.add_typer(keys.app, name="keys")


@app.command()
def up() -> None:
    """Start the whole mesh on this machine (embedded servers unless ORCH_*_URL are set)."""
    from orchestrator.cli.up import run_mesh
    from orchestrator.common.errors import OrchestratorError
    from orchestrator.common.redaction import redact

    try:
        asyncio.run(run_mesh(load_settings()))
    except (OrchestratorError, SettingsError, OSError) as exc:
        typer.echo(f"orch up: {redact(str(exc))}", err=True)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        pass


@app.command()
def bench(
    only: Annotated[
        list[str] | None,
        typer.Argument(help="Sections to run: dag, sessions, services (default: all)."),
    ] = None,
) -> None:
    """Start a private mesh, measure it against baselines from the same run, print the figures."""
    from orchestrator.bench.__main__ import main as run_bench

    run_bench(only or [])


def main() -> None:
    sys.exit(app())


if __name__ == "__main__":
    main()
