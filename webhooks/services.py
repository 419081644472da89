"""The per-app object graph, built once by ``create_app`` from ``Settings``.

Routers reach it through :data:`ServicesDep`; nothing is module-level.

Example::

    @router.get("/x")
    async def x(services: ServicesDep) -> dict[str, str]:
        return {"store": type(services.store).__name__}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from bot.clock import Clock
from bot.engine import Engine
from bot.observability import Metrics
from bot.settings import Settings
from bot.storage.base import ConversationStore
from bot.templates import ReplyTemplates
from webhooks.signature import SignatureChecker


@dataclass
class Services:
    """Everything a request handler may need, owned by one app instance."""

    settings: Settings
    store: ConversationStore
    clock: Clock
    metrics: Metrics
    templates: ReplyTemplates
    engine: Engine
    signatures: SignatureChecker
    # The official Twilio REST client (async), opened by the lifespan.
    twilio: Any = None
    # Feature extensions register themselves here explicitly (see create_app).
    extras: dict[str, Any] = field(default_factory=dict)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
