"""What request handlers see: the process :class:`~bot.runtime.Runtime` plus
the webhook-only parts (signature checking, late turns).

``Services`` *is* the app's runtime (built by ``Services.build(settings,
**parts)``, the same builder as the worker's), not a copy of one: whatever
the runtime's parts hold on to (the outbox, the REST deliverer) sees the
same object the routers see. Routers reach it through :data:`ServicesDep`;
nothing is module-level.

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
    """The web app's :class:`~bot.runtime.Runtime`, with the webhook-only parts.

    Example::

        services = Services.build(settings, store=MemoryStore())
        services.signatures.verify(request, form)
    """

    # Built from the settings' auth token and public URL when not given.
    signatures: SignatureChecker | None = None
    # Turns still running after their webhook answered (late replies).
    background: set[asyncio.Future[Any]] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.signatures is None:
            self.signatures = SignatureChecker(
                self.settings.twilio_auth_token.get_secret_value(), self.settings.public_base_url
            )


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
