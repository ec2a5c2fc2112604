"""POST /api/v1/sessions/{id}/tasks: a plan of many tasks through the gateway."""

from __future__ import annotations

import uuid

import httpx


async def test_a_plan_is_created_whole_and_refused_whole(gateway: str) -> None:
    session, root, first, second = (str(uuid.uuid4()) for _ in range(4))
    plan = {
        "tasks": [
            {"task_id": root, "title": "Ship the importer"},
            {"task_id": first, "title": "parse", "parent_id": root},
            {"task_id": second, "title": "load", "parent_id": root, "depends_on": [first]},
        ]
    }
    async with httpx.AsyncClient(base_url=gateway + "/api/v1", timeout=15) as http:
        created = await http.post(f"/sessions/{session}/tasks", json=plan)
        assert created.status_code == 201, created.text
        tasks = created.json()["tasks"]
        assert [t["id"] for t in tasks] == [root, first, second]
        assert tasks[0]["child_ids"] == [first, second]
        assert [t["status"] for t in tasks[1:]] == ["ready", "pending"]

        again = await http.post(f"/sessions/{session}/tasks", json=plan)
        assert again.status_code == 201 and again.json()["tasks"] == tasks

        other = str(uuid.uuid4())
        looped = {
            "tasks": [
                {"task_id": other, "title": "after the parent", "depends_on": [root]},
                {"task_id": str(uuid.uuid4()), "title": "x", "parent_id": root,
                 "depends_on": [other]},
            ]
        }  # fmt: skip
        refused = await http.post(f"/sessions/{session}/tasks", json=looped)
        assert refused.status_code == 422, refused.text
        assert (await http.get(f"/tasks/{other}")).status_code == 404

        empty = await http.post(f"/sessions/{session}/tasks", json={"tasks": []})
        assert empty.status_code == 422
