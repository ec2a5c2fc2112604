"""Request bodies, and creation helpers, that several gateway test modules use."""

from __future__ import annotations

from typing import Any

import httpx

SID = "0b9c4c1e-8f1a-4f57-9a58-8f3d8c7a2f10"

NEW_TASK: dict[str, Any] = {
    "session_id": SID,
    "title": "Split billing.py",
    "priority": "high",
    "complexity": "moderate",
    "required_capabilities": ["refactoring"],
    "estimate": {"optimistic_hours": 1, "most_likely_hours": 2, "pessimistic_hours": 6},
    "input": {"command": "make test"},
    "requires_approval": True,
}


async def create_task(client: httpx.AsyncClient, **changes: Any) -> dict[str, Any]:
    """POSTs NEW_TASK (with `changes`) and returns the created task; fails unless 201."""
    response = await client.post("/api/v1/tasks", json={**NEW_TASK, **changes})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
