"""A real `opencode serve` for the tests, isolated and offline, with the LLM stand-in as its
only provider."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from orchestrator.common.stack.net import pick_free_port
from orchestrator.worker.executors.opencode.server import OpenCodeServer, find_binary
from tests.support.llm_standin import MODEL

PROVIDER = "standin"
MODEL_ID = f"{PROVIDER}/{MODEL}"
REPO_ROOT = Path(__file__).resolve().parents[2]
# Dollars per million tokens, so a run has a cost to record.
COST = {"input": 2.0, "output": 8.0}
# Edits and writes go ahead; commands are asked for, so the session's policy answers.
PERMISSIONS = {"edit": "allow", "bash": "ask", "webfetch": "deny", "external_directory": "deny"}


def opencode_binary() -> Path:
    """The project's install (`make install`), or `opencode` on PATH."""
    return find_binary(start=REPO_ROOT)


def standin_config(
    llm_base_url: str, permission: Mapping[str, str] | None = None
) -> dict[str, Any]:
    return {
        "model": MODEL_ID,
        "small_model": MODEL_ID,
        "enabled_providers": [PROVIDER],
        "provider": {
            PROVIDER: {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Scripted stand-in",
                "options": {"baseURL": llm_base_url, "apiKey": "not-a-secret"},
                "models": {
                    MODEL: {
                        "name": "Scripted",
                        "tool_call": True,
                        "cost": COST,
                        "limit": {"context": 100_000, "output": 4_000},
                    }
                },
            }
        },
        "permission": dict(permission or PERMISSIONS),
    }


def offline_environment() -> dict[str, str]:
    """Package registries on a loopback port nobody listens on: nothing is downloaded."""
    dead = f"http://127.0.0.1:{pick_free_port()}/"
    return {"npm_config_registry": dead, "BUN_CONFIG_REGISTRY": dead}


@contextlib.asynccontextmanager
async def running_opencode(
    llm_base_url: str, permission: Mapping[str, str] | None = None
) -> AsyncIterator[OpenCodeServer]:
    state = Path(tempfile.mkdtemp(prefix="orch-opencode-"))
    server = OpenCodeServer(
        opencode_binary(),
        state,
        config=standin_config(llm_base_url, permission),
        env=offline_environment(),
    )
    try:
        await server.start()
        yield server
    finally:
        await server.stop()
        shutil.rmtree(state, ignore_errors=True)
