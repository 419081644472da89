"""What request handlers see: the process :class:`~bot.runtime.Runtime` plus
the webhook-only parts (signature checking).

Routers reach it through :data:`ServicesDep`; nothing is module-level.

Example::

    @router.get("/x")
    async def x(services: ServicesDep) -> dict[str, str]:
        return {"store": type(services.store).__name__}
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from bot.runtime import Runtime
from webhooks.signature import SignatureChecker


@dataclass
class Services(Runtime):
    signatures: SignatureChecker | None = None
    # Turns still running after their webhook answered (late replies).
    background: set[asyncio.Future[Any]] = field(default_factory=set)


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
