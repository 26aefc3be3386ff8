"""The decision service on plain FastAPI + uvicorn, in one process (fused stages).

The benchmark's baseline and the fastest way to run the API without Ray:
`uvicorn --factory serving.local:app_from_env`.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from configs.loader import LiftgateConfig, load_config
from liftgate.core.home import Home
from serving.access import Access
from serving.components import (
    READY_WAIT_S,
    build_action_service,
    build_event_service,
    build_service,
)
from serving.consent_http import ConsentUpdates
from serving.http import api_for


def create_local_app(config: LiftgateConfig, home: Home, wait_s: float = READY_WAIT_S) -> FastAPI:
    api = api_for(config)
    api.state.access = Access.for_home(config.serving.auth, home)
    api.state.access.announce()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service, components = build_service(config, home, wait_s=wait_s)
        app.state.service = service
        app.state.actions = build_action_service(config, home, service.metrics)
        app.state.consent = ConsentUpdates.for_home(home)
        app.state.events = build_event_service(config, home, service.metrics)
        try:
            yield
        finally:
            app.state.actions.close()
            app.state.consent.close()
            app.state.events.close()
            service.close()
            components.close()

    api.router.lifespan_context = lifespan
    return api


def app_from_env() -> FastAPI:
    return create_local_app(load_config(), Home.from_env())
