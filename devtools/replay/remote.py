"""A replayed conversation with a running server (``bot replay --url``): TwiML answers only.

Example::

    async with RemoteConversation("http://127.0.0.1:8000", auth_token="...", channel=Channel.SMS,
                                  user="+14155550123") as conv:
        (await conv.step(UserStep("hi"))).outcome.sent
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping

import httpx
import phonenumbers

from bot.cli import DEV_ACCOUNT_SID
from bot.compliance import keyword_type
from bot.messages import Channel, OptOutType
from devtools.replay.config import BOT_NUMBER, MESSAGES_PATH
from devtools.replay.conversation import Conversation, http_problem
from devtools.replay.errors import ReplayError
from devtools.replay.expect import SentMessage, StepOutcome
from devtools.replay.report import StepObservation
from devtools.replay.text import quote, short
from devtools.simulator.inbound import parse_twiml
from devtools.simulator.rules import DEFAULT_KEYWORD_REPLIES
from devtools.webhook_client import WebhookClient


class RemoteConversation(Conversation):
    """A conversation with a running server (``bot replay --url``): TwiML answers only.

    Each conversation texts from a fresh number of the same country and
    length as the transcript's ``user`` (the server keeps state and opt-outs
    between runs); messages to that number are reported as sent to ``user``.

    Example::

        async with RemoteConversation("http://127.0.0.1:8000", auth_token="...", channel=Channel.SMS,
                                      user="+14155550123") as conv:
            (await conv.step(UserStep("hi"))).outcome.sent
    """

    def __init__(
        self,
        url: str,
        *,
        auth_token: str,
        channel: Channel,
        user: str,
        bot: str = BOT_NUMBER,
        profile_name: str | None = None,
        account_sid: str = DEV_ACCOUNT_SID,
        public_url: str | None = None,
        timeout: float = 20.0,
        twilio_keyword_replies: bool = True,
    ) -> None:
        self.transcript_user = user
        # Twilio's own STOP/START/HELP confirmations on SMS, played here as the
        # local simulator does in-process (no Twilio sits in front of the server).
        self.twilio_keyword_replies = twilio_keyword_replies
        self._opted_out = False
        super().__init__(
            channel=channel, user=fresh_number(user), bot=bot, profile_name=profile_name, account_sid=account_sid
        )
        self.url = url.rstrip("/")
        self.public_url = (public_url or self.url).rstrip("/")
        self.auth_token = auth_token
        self.timeout = timeout
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> RemoteConversation:
        self._http = httpx.AsyncClient(base_url=self.url, timeout=self.timeout)
        self.webhooks = WebhookClient(self._http, auth_token=self.auth_token, public_base_url=self.public_url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def post_inbound(self, body: bytes, headers: dict[str, str], form: dict[str, str] | None) -> StepObservation:
        assert self.webhooks is not None
        sent: list[SentMessage] = [] if form is None else self._twilio_keyword(form)
        started = time.perf_counter()
        try:
            response = await self.webhooks.http.post(MESSAGES_PATH, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ReplayError(f"cannot reach {self.url}{MESSAGES_PATH}: {type(exc).__name__}: {exc}") from None
        webhook = time.perf_counter() - started
        problems: list[str] = []
        if response.status_code != 200:
            problem = http_problem(response, MESSAGES_PATH)
            if response.status_code == 403:
                problem += (
                    f"; replay signs with TWILIO_AUTH_TOKEN over {self.public_url}{MESSAGES_PATH}: "
                    "the server's auth token and PUBLIC_BASE_URL must match"
                )
            problems.append(problem)
        elif response.text.strip():
            try:
                for item in parse_twiml(response.text):
                    to = item.to or self.channel.address(self.user)
                    if Channel.from_address(to)[1] == self.user:
                        to = self.channel.address(self.transcript_user)
                    sent.append(self.sent(to, item.body, item.media, via="twiml"))
            except Exception as exc:
                problems.append(f"the server's answer is not valid TwiML ({exc}): {quote(short(response.text))}")
        if form is None:
            if self._last_answer is not None and response.text != self._last_answer:
                problems.append(
                    "exactly-once broken: the retried delivery was not answered with the first answer byte for byte "
                    f"(first: {quote(short(self._last_answer))}, retry: {quote(short(response.text))})"
                )
        else:
            self._last_answer = response.text if response.status_code == 200 else None
        return StepObservation(
            outcome=StepOutcome(sent=tuple(sent)),
            problems=tuple(problems),
            http_status=response.status_code,
            webhook_seconds=webhook,
        )


    def _twilio_keyword(self, form: Mapping[str, str]) -> list[SentMessage]:
        if self.channel is not Channel.SMS or "ButtonPayload" in form:
            return []
        keyword = keyword_type(form.get("Body", ""), opted_out=self._opted_out)
        if keyword is OptOutType.STOP:
            self._opted_out = True
        elif keyword is OptOutType.START:
            self._opted_out = False
        if keyword is None or not self.twilio_keyword_replies:
            return []
        text = DEFAULT_KEYWORD_REPLIES[keyword.value]
        return [self.sent(self.channel.address(self.transcript_user), text, (), via="twilio")]



def fresh_number(user: str) -> str:
    """A random number with the same country code and length as ``user``."""
    digits = user.lstrip("+")
    keep = max(len(digits) - 7, 1)
    for _ in range(20):
        tail = "".join(str(secrets.randbelow(10)) for _ in range(len(digits) - keep))
        candidate = "+" + digits[:keep] + tail
        try:
            if phonenumbers.is_possible_number(phonenumbers.parse(candidate, None)):
                return candidate
        except phonenumbers.NumberParseException:
            continue
    return user
