"""The composition root: nothing connects at import or creation; the lifespan opens and closes."""

from __future__ import annotations

import pytest

from orchestrator.common.settings import Settings
from orchestrator.gateway.app import create_app
from orchestrator.gateway.resources import Resources

pytestmark = pytest.mark.timeout(30)


async def test_the_lifespan_opens_what_was_not_given_and_forgets_it_after() -> None:
    # No URLs: only the gRPC channels are made, and those connect lazily, so this needs no server.
    app = create_app(Settings(nats_url=None, redis_url=None, database_url=None))
    resources: Resources = app.state.resources
    assert resources.clients is None
    async with app.router.lifespan_context(app):
        assert resources.clients is not None
        assert set(resources.clients.channels) == {"session", "agent", "task", "context"}
        assert resources.events is None and resources.nats is None
    assert resources.clients is None
