"""The dev phone's *Staff inbox* and *Codes* panels: what staff and verified phones received.

- ``GET /dev/api/staff-inbox``: the emails the local SendGrid accepted (newest first);
- ``GET /dev/api/codes``: the one-time codes the local Verify sent (newest first).

The page (``static/staff.js``) polls both, so a developer sees the hand-off
email staff get and can finish a number verification without a phone.

Example::

    app.include_router(create_staff_router(sendgrid, verify))
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from devtools.simulator.sendgrid import LocalSendGrid
from devtools.simulator.verify import LocalVerify


def create_staff_router(sendgrid: LocalSendGrid, verify: LocalVerify) -> APIRouter:
    """The two panels' JSON endpoints."""
    router = APIRouter(include_in_schema=False)

    @router.get("/dev/api/staff-inbox")
    async def staff_inbox() -> dict[str, Any]:
        return {"emails": [email.to_dict() for email in reversed(sendgrid.emails)]}

    @router.get("/dev/api/codes")
    async def codes() -> dict[str, Any]:
        return {"codes": [{"to": c.to, "channel": c.channel, "code": c.code, "at": c.at.isoformat()}
                          for c in reversed(verify.sent)]}

    return router
