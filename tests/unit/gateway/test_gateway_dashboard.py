"""`/` serves the built dashboard when there is one, and never hides an API route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from orchestrator.common.settings import Settings
from orchestrator.gateway.app import create_app
from orchestrator.gateway.clients import ServiceClients

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def with_dashboard(
    tmp_path: Path, settings: Settings, clients: ServiceClients
) -> AsyncIterator[httpx.AsyncClient]:
    (tmp_path / "index.html").write_text("<html>glass box</html>")
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "app.js").write_text("console.log('hi')")
    app = create_app(settings, clients=clients, dashboard_dir=tmp_path)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_the_built_dashboard_is_served_at_root(with_dashboard: httpx.AsyncClient) -> None:
    assert "glass box" in (await with_dashboard.get("/")).text
    assert (await with_dashboard.get("/assets/app.js")).status_code == 200


async def test_page_paths_fall_back_to_the_app_shell(with_dashboard: httpx.AsyncClient) -> None:
    response = await with_dashboard.get("/sessions/0b9c4c1e-8f1a-4f57-9a58-8f3d8c7a2f10")
    assert response.status_code == 200 and "glass box" in response.text
    assert (await with_dashboard.get("/assets/missing.js")).status_code == 404


async def test_api_routes_take_precedence_over_the_dashboard(
    with_dashboard: httpx.AsyncClient,
) -> None:
    assert (await with_dashboard.get("/health")).json() == {"status": "ok"}
    assert (await with_dashboard.get("/api/v1/sessions")).status_code == 200
    unknown = await with_dashboard.post("/api/v1/unknown")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"


async def test_a_missing_build_says_so_and_points_at_the_api(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert "Dashboard not built" in response.text and 'href="/docs"' in response.text


async def test_a_build_made_while_the_gateway_runs_is_served_at_once(
    tmp_path: Path, settings: Settings, clients: ServiceClients
) -> None:
    dist = tmp_path / "dist"
    app = create_app(settings, clients=clients, dashboard_dir=dist)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        missing = await http.get("/sessions/new")
        assert missing.status_code == 200 and "Dashboard not built" in missing.text
        assert "make install" in missing.text
        assert (await http.get("/assets/app.js")).status_code == 404
        assert (await http.get("/api/v1/nothing")).status_code == 404
        dist.mkdir()
        (dist / "index.html").write_text("<html>glass box</html>")
        assert "glass box" in (await http.get("/sessions/new")).text
