"""Liveness, readiness and Prometheus metrics.

- ``GET /healthz``: the process answers (always 200 while it runs).
- ``GET /readyz``: 200 when the store answers a ping, else 503.
- ``GET /metrics``: Prometheus text format of this app's registry.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.errors import StoreError
from webhooks.services import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    try:
        await asyncio.wait_for(services.store.ping(), timeout=1.0)
    except (StoreError, TimeoutError) as exc:
        reason = str(exc) or "store ping timed out"
        return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
    return JSONResponse({"status": "ready", "store": type(services.store).__name__})


@router.get("/metrics")
async def metrics(services: ServicesDep) -> Response:
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
