"""The turn handler the app uses by default.

Until the intent pipeline lands this is a greeter: every message gets the
``greeting`` template. :func:`build_handler` is the one place that decides
which handler an app gets.

Example::

    handler = build_handler(settings, templates=templates, clock=clock, store=store)
    result = await handler.handle(ctx)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.clock import Clock
from bot.engine import TurnContext
from bot.messages import Reply, TurnResult
from bot.settings import Settings
from bot.storage.base import ConversationStore
from bot.templates import ReplyTemplates


class GreetingHandler:
    """Answers every message with the greeting template."""

    def __init__(self, templates: ReplyTemplates, context: Mapping[str, Any]) -> None:
        self.templates = templates
        self.template_context = dict(context)

    async def handle(self, ctx: TurnContext) -> TurnResult:
        text = self.templates.render(
            "greeting",
            ctx.message.channel.value,
            name=ctx.message.profile_name,
            **self.template_context,
        )
        return TurnResult(replies=(Reply(text=text),), intent="greet")


def build_handler(
    settings: Settings,
    *,
    templates: ReplyTemplates,
    clock: Clock,
    store: ConversationStore,
    chat_model: Any = None,
) -> GreetingHandler:
    business = {"name": "Bright Smile Dental", "phone": "+1 555 010 0199"}
    return GreetingHandler(templates, {"business": business})
