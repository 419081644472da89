"""``bot chat``: a terminal conversation through the real webhook path.

Each line is sent as a Twilio-signed form POST to ``/twilio/messages`` of an
in-process app; the TwiML answer is printed.

Example::

    $ bot chat
    you> hi
    bot> Hi! This is Bright Smile Dental. ...
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

import httpx

from bot.messages import Channel
from bot.settings import Settings
from bot.webhook_client import WebhookClient, inbound_form, parse_twiml

PUBLIC_URL = "https://bot.local"


async def run_chat(
    settings: Settings,
    *,
    whatsapp: bool,
    user: str,
    bot: str,
    profile_name: str | None,
    lines: Iterable[str],
    interactive: bool,
    out: TextIO | None = None,
) -> None:
    """Read lines, send each as a signed inbound message, print the replies."""
    import sys

    from webhooks.app import create_app

    out = out or sys.stdout
    channel = Channel.WHATSAPP if whatsapp else Channel.SMS
    app = create_app(settings.model_copy(update={"public_base_url": PUBLIC_URL}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bot.internal") as http:
            client = WebhookClient(
                http,
                auth_token=settings.twilio_auth_token.get_secret_value(),
                public_base_url=PUBLIC_URL,
            )
            if interactive:
                print(f"Chatting over {channel.value} as {user}. Ctrl-D to quit.", file=out)
            for line in _prompted(lines, interactive, out):
                text = line.rstrip("\n")
                if not text.strip():
                    continue
                form = inbound_form(channel, user, bot, text, profile_name=profile_name)
                resp = await client.post("/twilio/messages", form)
                if resp.status_code != 200:
                    print(f"[HTTP {resp.status_code}] {resp.text}", file=out)
                    continue
                replies = parse_twiml(resp.text)
                if not replies:
                    print("bot> (no reply)", file=out)
                for body, media in replies:
                    print(f"bot> {body}", file=out)
                    for url in media:
                        print(f"     [media] {url}", file=out)
                out.flush()


def _prompted(lines: Iterable[str], interactive: bool, out: TextIO) -> Iterable[str]:
    for line in lines:
        yield line
        if interactive:
            print("you> ", end="", file=out, flush=True)
