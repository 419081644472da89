"""What both ways of replaying a conversation share: the texter's forms, buttons, exactly-once checks.

Example::

    form = conversation.user_form("hi")         # what Twilio posts
    seen = await conversation.step(UserStep("hi"))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from bot.messages import Channel, Choice
from bot.sms.segments import count_segments
from devtools.replay.config import MESSAGES_PATH
from devtools.replay.errors import ReplayError
from devtools.replay.expect import SentMessage, Via
from devtools.replay.report import StepObservation
from devtools.replay.text import quote, short
from devtools.replay.transcript import (
    ButtonStep,
    DuplicateStep,
    Step,
    UserStep,
)
from devtools.webhook_client import WebhookClient, inbound_form, new_sid


class Conversation:
    """What both ways of replaying share: the texter, forms, observation."""

    def __init__(self, *, channel: Channel, user: str, bot: str, profile_name: str | None, account_sid: str) -> None:
        self.channel = channel
        self.user = user
        self.bot = bot
        self.profile_name = profile_name
        self.account_sid = account_sid
        self.webhooks: WebhookClient | None = None
        self._last_request: tuple[bytes, dict[str, str], str] | None = None
        self._last_answer: str | None = None
        self._last_turn_ran = False
        # payload -> (title, offering message SID, its list button when it was a list picker)
        self._offered: dict[str, tuple[str, str | None, str | None]] = {}

    # -- forms ---------------------------------------------------------------

    def user_form(
        self, text: str, *, media: Sequence[str] = (), location: tuple[float, float] | None = None
    ) -> dict[str, str]:
        """The form Twilio posts for a message with Body ``text``."""
        sid = new_sid("MM" if media else "SM")
        pairs = [
            (f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media/{new_sid('ME')}", ct)
            for ct in media
        ]
        form = inbound_form(
            self.channel, self.user, self.bot, text, message_sid=sid, account_sid=self.account_sid,
            media=pairs, location=location, profile_name=self.profile_name,
        )
        if location is not None and self.channel is not Channel.WHATSAPP:
            form["Latitude"], form["Longitude"] = str(location[0]), str(location[1])
        return form

    def button_form(self, payload: str) -> dict[str, str]:
        """The form of a quick-reply press (a list pick when the offer was a list picker); ButtonText from the
        buttons last offered, if known."""
        title, offered_by, from_list = self._offered.get(payload, (payload, None, None))
        form = inbound_form(
            self.channel, self.user, self.bot, title, account_sid=self.account_sid,
            button_payload=payload, button_text=title, replied_to=offered_by, profile_name=self.profile_name,
            from_list=from_list,
        )
        if self.channel is not Channel.WHATSAPP:
            # Spec: an SMS conversation's button step is delivered the same way.
            form.update(ButtonPayload=payload, ButtonText=title, Body=title)
            if offered_by:
                form["OriginalRepliedMessageSid"] = offered_by
        return form

    def remember_buttons(self, offers: Sequence[tuple[str, Sequence[Choice], str | None]]) -> None:
        """Buttons the bot just offered (message SID, choices, list button): the latest offer wins."""
        for sid, buttons, list_button in offers:
            if buttons:
                self._offered = {b.payload: (b.title, sid, list_button) for b in buttons}

    def sent(self, to: str, body: str, media: Sequence[str], *, via: Via, template: str | None = None,
             buttons: Sequence[str] = (), list_button: str | None = None) -> SentMessage:
        """A :class:`SentMessage` with its SMS segments counted (MMS count as one)."""
        channel = Channel.from_address(to)[0]
        segments = None
        if channel is Channel.SMS:
            segments = 1 if media else count_segments(body).segments
        return SentMessage(to=to, body=body, media=tuple(media), template=template, segments=segments, via=via,
                           buttons=tuple(buttons), list_button=list_button)

    @property
    def offered_buttons(self) -> list[str]:
        """Payloads of the buttons last offered, in order (``bot chat``'s ``/button N``)."""
        return list(self._offered)

    async def step(self, step: Step) -> StepObservation:
        """Run one step and observe what the bot did."""
        if isinstance(step, UserStep):
            return await self.deliver(self.user_form(step.text, media=step.media, location=step.location))
        if isinstance(step, ButtonStep):
            return await self.deliver(self.button_form(step.payload))
        if isinstance(step, DuplicateStep):
            return await self.redeliver()
        return await self.local_step(step)

    async def deliver(self, form: dict[str, str]) -> StepObservation:
        """Sign and POST an inbound message form."""
        assert self.webhooks is not None
        body, headers = self.webhooks.signed(MESSAGES_PATH, form)
        self._last_request = (body, headers, form["MessageSid"])
        return await self.post_inbound(body, headers, form)

    async def redeliver(self) -> StepObservation:
        """The previous inbound request again, byte for byte."""
        if self._last_request is None:
            raise ReplayError("duplicate: no earlier user or button step was delivered")
        body, headers, _ = self._last_request
        return await self.post_inbound(body, headers, None)

    async def post_inbound(self, body: bytes, headers: dict[str, str], form: dict[str, str] | None) -> StepObservation:
        raise NotImplementedError

    async def local_step(self, step: Step) -> StepObservation:
        raise ReplayError(f"{step.describe()} needs in-process replay")

    def duplicate_problems(self, answer: str, ran: bool, rest: int) -> list[str]:
        """Exactly-once: a retried delivery must be served the first answer and nothing else."""
        sid = self._last_request[2] if self._last_request else "the message"
        if not self._last_turn_ran:
            return []  # the first delivery did not commit (it crashed): a retry may run the turn
        problems = []
        if ran:
            problems.append(f"exactly-once broken: the retried delivery of {sid} ran the turn again")
        if answer != self._last_answer:
            problems.append(
                f"exactly-once broken: the retried delivery of {sid} was not answered with the first answer "
                f"byte for byte (first: {quote(short(self._last_answer or ''))}, retry: {quote(short(answer))})"
            )
        if rest:
            problems.append(
                f"exactly-once broken: the retried delivery of {sid} sent {rest} new message"
                f"{'s' if rest != 1 else ''} through the REST API"
            )
        return problems


@dataclass(frozen=True, slots=True)
class Mark:
    """Where things stood when a step began: what happened since is the step's."""

    messages: int
    turns: int
    calls: int
    errors: int



def http_problem(response: httpx.Response, path: str) -> str:
    return f"POST {path} answered HTTP {response.status_code}: {quote(short(response.text))}"
