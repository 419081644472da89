"""The simulated phone calls the bot, the way Twilio plays a call.

:class:`CallPlayer` places an inbound call: it POSTs the number's Voice URL
(``/twilio/voice`` beside the messaging webhook) with the fields Twilio
sends (``CallSid``, ``From``, ``To``, ``CallStatus`` ...; see FACTS.md,
"Voice"), signed like every webhook, and plays the voice TwiML it gets back:
each ``<Say>`` is heard, ``<Gather>`` waits for the caller (speech as
``SpeechResult`` + ``Confidence``, keys as ``Digits``; silence goes on with
the verbs after it), ``<Redirect>`` is followed, ``<Dial>`` rings the number
(answered or not, as the test decides) and posts ``DialCallStatus`` to its
``action``, ``<Hangup/>`` or the end of the document ends the call. When
the call ends, the status callback (``/twilio/voice/status``) gets
``CallStatus=completed`` and ``CallDuration``. Relative ``action`` URLs are
resolved against the current request's URL, as Twilio does.

Every call is kept in the account's :class:`CallBook`, which the Calls API
(``/2010-04-01/Accounts/{AccountSid}/Calls.json``) serves.

Example::

    call = CallPlayer(sim, user="+14155550123", bot="+15005550006")
    (await call.start()).said          # ('Hi! This is Bright Smile Dental. ...',)
    (await call.say("book a cleaning")).said
    (await call.press("1")).said
    await call.hang_up()               # posts the completed status callback
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Final
from urllib.parse import urlencode, urljoin, urlsplit

import httpx

from devtools.simulator.rules import API_VERSION
from devtools.simulator.state import Simulator

#: What the staff phone does when the bot ``<Dial>``s it (Twilio's ``DialCallStatus``).
DIAL_OUTCOMES: Final = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
# Seconds a caller takes to say something, and a speech engine's words per second:
# a frozen clock still gives a call a plausible duration.
_CALLER_SECONDS: Final = 3.0
_WORDS_PER_SECOND: Final = 2.5
# A TwiML document that redirects to itself forever must not hang the simulator.
_MAX_HOPS: Final = 20


class CallError(RuntimeError):
    """The bot's answer could not be played (HTTP error, not TwiML, a redirect loop)."""


@dataclass(frozen=True, slots=True)
class CallTurn:
    """What the caller heard after one action, and where the call stands."""

    said: tuple[str, ...] = ()
    listening: bool = False
    ended: bool = False
    dialed: str | None = None
    dial_status: str | None = None


@dataclass(slots=True)
class SimCall:
    """One call as the Calls API shows it."""

    sid: str
    account_sid: str
    from_: str
    to: str
    direction: str = "inbound"
    status: str = "ringing"
    created: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration: int | None = None
    said: list[str] = field(default_factory=list)
    heard: list[str] = field(default_factory=list)

    def resource(self) -> dict[str, Any]:
        """The call as Twilio's REST API returns it (``api.v2010.account.call``)."""
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}"
        created = self.created or self.start_time
        return {
            "sid": self.sid, "date_created": _rfc2822(created), "date_updated": _rfc2822(self.end_time or created),
            "parent_call_sid": None, "account_sid": self.account_sid, "to": self.to, "to_formatted": self.to,
            "from": self.from_, "from_formatted": self.from_, "phone_number_sid": None, "status": self.status,
            "start_time": _rfc2822(self.start_time), "end_time": _rfc2822(self.end_time),
            "duration": None if self.duration is None else str(self.duration), "price": None, "price_unit": "USD",
            "direction": self.direction, "answered_by": None, "api_version": API_VERSION, "forwarded_from": None,
            "group_sid": None, "caller_name": None, "queue_time": "0", "trunk_sid": None, "uri": f"{base}.json",
            "subresource_uris": {
                "notifications": f"{base}/Notifications.json", "recordings": f"{base}/Recordings.json",
                "events": f"{base}/Events.json",
            },
        }


class CallBook:
    """The account's calls (newest last), shared by the players, the Calls API and the dev phone."""

    def __init__(self) -> None:
        self.calls: dict[str, SimCall] = {}
        self.players: dict[str, CallPlayer] = {}

    @classmethod
    def of(cls, sim: Simulator) -> CallBook:
        """The call book of ``sim`` (made on first use)."""
        book = getattr(sim, "_call_book", None)
        if book is None:
            book = cls()
            sim._call_book = book  # type: ignore[attr-defined]
        return book

    def add(self, call: SimCall) -> SimCall:
        self.calls[call.sid] = call
        return call

    def get(self, sid: str) -> SimCall | None:
        return self.calls.get(sid)


class CallPlayer:
    """One inbound call from ``user`` to ``bot``, played against the bot's voice webhook.

    ``dial_status`` is what the staff phone does when the bot ``<Dial>``s
    (``completed``: answered; ``no-answer``, ``busy`` ...).
    """

    def __init__(
        self,
        sim: Simulator,
        *,
        user: str,
        bot: str,
        voice_url: str | None = None,
        voice_public_url: str | None = None,
        status_url: str | None = None,
        dial_status: str = "completed",
        http: httpx.AsyncClient | None = None,
    ) -> None:
        if dial_status not in DIAL_OUTCOMES:
            raise ValueError(f"dial_status must be one of {', '.join(sorted(DIAL_OUTCOMES))}")
        webhook = sim.webhook_url or ""
        if not (voice_url or webhook):
            raise ValueError("no voice URL: pass voice_url or set Simulator(webhook_url=...)")
        self.sim = sim
        # Where requests go (replay and tests: the app in-process); default: the simulator's client.
        self.http = http
        self.voice_url = voice_url or urljoin(webhook, "/twilio/voice")
        public = voice_public_url or (urljoin(sim.webhook_public_url, _path(self.voice_url))
                                      if sim.webhook_public_url else self.voice_url)
        self.voice_public_url = public
        self.status_url = status_url or urljoin(self.voice_url, "/twilio/voice/status")
        self.dial_status = dial_status
        now = sim.clock.now()
        self.call = CallBook.of(sim).add(SimCall(
            sid=sim.new_sid("CA"), account_sid=sim.account_sid, from_=user, to=bot, created=now, start_time=now,
        ))
        CallBook.of(sim).players[self.call.sid] = self
        # The current document: where it came from (actual and signed URL) and the verbs left.
        self._url = self.voice_url
        self._public = self.voice_public_url
        self._pending: list[ET.Element] = []
        self._gather: ET.Element | None = None
        self._spoken_words = 0
        self._inputs = 0
        self._hops = 0
        self._last: tuple[str, str, dict[str, str]] | None = None

    @property
    def ended(self) -> bool:
        return self.call.status not in ("ringing", "in-progress")

    async def start(self) -> CallTurn:
        """Ring the bot: POST the Voice URL and play its answer up to the first ``<Gather>``."""
        return await self._request(self.voice_url, self.voice_public_url, {})

    async def say(self, text: str, *, confidence: float = 0.92) -> CallTurn:
        """Say ``text`` while a ``<Gather>`` listens (``SpeechResult``, ``Confidence``)."""
        self.call.heard.append(text)
        return await self._answer({"SpeechResult": text, "Confidence": f"{confidence:.2f}"})

    async def press(self, digits: str) -> CallTurn:
        """Press keys while a ``<Gather>`` listens (``Digits``)."""
        self.call.heard.append(f"[keys {digits}]")
        return await self._answer({"Digits": digits})

    async def silence(self) -> CallTurn:
        """Say nothing: the ``<Gather>`` times out and the verbs after it play."""
        self._need_gather()
        self._gather = None
        return await self._play([])

    async def hang_up(self) -> CallTurn:
        """The caller hangs up: the call completes and its status callback is posted."""
        if not self.ended:
            await self._end("completed")
        return CallTurn(ended=True)

    # -- playing ------------------------------------------------------------------
    async def _answer(self, fields: Mapping[str, str]) -> CallTurn:
        gather = self._need_gather()
        self._inputs += 1
        action = gather.get("action") or ""
        self._gather = None
        self._pending = []
        # No action: Twilio posts the input to the current document's URL.
        url, public = urljoin(self._url, action), urljoin(self._public, action)
        self._last = (url, public, {**self._fields(), **fields})
        return await self._request(url, public, fields)

    async def redeliver(self) -> tuple[str, ...]:
        """Post the caller's last answer again, byte for byte (a retried webhook); the call does not move.

        Returns the ``<Say>`` texts of the answer it got, for comparing with the first one.
        """
        if self._last is None:
            raise CallError("nothing to deliver again: the caller has not answered yet")
        url, public, fields = self._last
        response = await self._send(url, fields, public)
        if response.status_code != 200:
            raise CallError(f"the voice webhook answered {response.status_code}: {response.text[:200]}")
        root = ET.fromstring(response.text)  # noqa: S314 -- our own bot's answer, in development
        said: list[str] = []
        for verb in root:
            # What the caller hears before the bot listens (or the call moves on).
            says = [verb] if verb.tag == "Say" else list(verb.iter("Say")) if verb.tag == "Gather" else []
            said.extend(" ".join((s.text or "").split()) for s in says if (s.text or "").strip())
            if verb.tag != "Say":
                break
        return tuple(said)

    def _need_gather(self) -> ET.Element:
        if self.ended:
            raise CallError("the call has ended")
        if self._gather is None:
            raise CallError("the bot is not listening (no <Gather> is waiting)")
        return self._gather

    async def _request(self, url: str, public: str, extra: Mapping[str, str],
                       heard: list[str] | None = None) -> CallTurn:
        self._hops += 1
        if self._hops > _MAX_HOPS:
            raise CallError(f"more than {_MAX_HOPS} requests without the caller (a redirect loop?)")
        document = await self._post(url, public, extra)
        self._url, self._public = url, public
        self._pending = list(document)
        return await self._play(heard)

    async def _play(self, heard: list[str] | None = None) -> CallTurn:
        """Play the pending verbs until the caller is asked for input or the call ends."""
        heard = heard if heard is not None else []
        while self._pending:
            verb = self._pending.pop(0)
            tag = verb.tag
            if tag == "Say":
                self._hear(heard, verb)
            elif tag == "Gather":
                for child in verb:
                    if child.tag == "Say":
                        self._hear(heard, child)
                self._gather = verb
                self._hops = 0
                return CallTurn(said=tuple(heard), listening=True)
            elif tag == "Redirect":
                target = (verb.text or "").strip()
                return await self._request(urljoin(self._url, target), urljoin(self._public, target), {}, heard)
            elif tag == "Dial":
                return await self._dial(verb, heard)
            elif tag == "Hangup":
                await self._end("completed")
                return CallTurn(said=tuple(heard), ended=True)
            # <Pause>, <Play> and the rest take time but say nothing here.
        # No verb left: Twilio hangs up.
        await self._end("completed")
        return CallTurn(said=tuple(heard), ended=True)

    async def _dial(self, verb: ET.Element, heard: list[str]) -> CallTurn:
        number = "".join(verb.itertext()).strip()
        status = self.dial_status
        action = verb.get("action")
        fields = {"DialCallStatus": status, "DialCallDuration": "60" if status == "completed" else "0"}
        if not action:
            # Without an action the call goes on with the verbs after <Dial>.
            turn = await self._play(heard)
            return replace(turn, dialed=number, dial_status=status)
        turn = await self._request(urljoin(self._url, action), urljoin(self._public, action), fields, heard)
        return replace(turn, dialed=number, dial_status=status)

    def _hear(self, heard: list[str], verb: ET.Element) -> None:
        text = " ".join((verb.text or "").split())
        if text:
            heard.append(text)
            self.call.said.append(text)
            self._spoken_words += len(text.split())

    async def _post(self, url: str, public: str, extra: Mapping[str, str]) -> ET.Element:
        if self.call.status == "ringing" and extra:
            raise CallError("the call has not started")
        fields = {**self._fields(), **extra}
        if self.call.status == "ringing":
            self.call.status = "in-progress"
        try:
            response = await self._send(url, fields, public)
        except httpx.HTTPError as exc:
            await self._end("failed")
            raise CallError(f"the voice webhook failed: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            await self._end("failed")
            raise CallError(f"the voice webhook answered {response.status_code}: {response.text[:200]}")
        try:
            root = ET.fromstring(response.text)  # noqa: S314 -- our own bot's answer, in development
        except ET.ParseError as exc:
            await self._end("failed")
            raise CallError(f"the voice webhook's answer is not TwiML: {response.text[:200]!r}") from exc
        if root.tag != "Response":
            await self._end("failed")
            raise CallError(f"TwiML must have <Response> at its root, got <{root.tag}>")
        return root

    def _fields(self) -> dict[str, str]:
        call = self.call
        return {
            "AccountSid": call.account_sid, "ApiVersion": API_VERSION, "CallSid": call.sid,
            "CallStatus": "ringing" if call.status == "ringing" else "in-progress",
            "Called": call.to, "Caller": call.from_, "Direction": "inbound", "From": call.from_, "To": call.to,
            "FromCountry": "US", "ToCountry": "US",
        }

    async def _end(self, status: str) -> None:
        call = self.call
        if self.ended:
            return
        now = self.sim.clock.now()
        start = call.start_time or now
        spoken = self._spoken_words / _WORDS_PER_SECOND + self._inputs * _CALLER_SECONDS
        call.status = status
        call.end_time = now
        call.duration = max(int((now - start).total_seconds()), round(spoken))
        fields = {**self._fields(), "CallStatus": status, "CallDuration": str(call.duration),
                  "Duration": str(max(1, -(-call.duration // 60)))}
        public = urljoin(self.voice_public_url, _path(self.status_url))
        with contextlib.suppress(httpx.HTTPError):  # Twilio does not retry status callbacks either
            await self._send(self.status_url, fields, public)

    async def _send(self, url: str, fields: Mapping[str, str], public: str) -> httpx.Response:
        if self.http is None:
            return await self.sim.post_signed(url, fields, signature_url=public)
        headers = {"X-Twilio-Signature": self.sim.sign(public, fields), "User-Agent": "TwilioProxy/1.1",
                   "Content-Type": "application/x-www-form-urlencoded"}
        return await self.http.post(url, content=urlencode(list(fields.items())).encode(), headers=headers)


def _path(url: str) -> str:
    return urlsplit(url).path


def _rfc2822(moment: datetime | None) -> str | None:
    # Twilio's format: "Thu, 24 Aug 2023 05:01:45 +0000" (UTC, whole seconds).
    return None if moment is None else format_datetime(moment.astimezone(UTC).replace(microsecond=0))
