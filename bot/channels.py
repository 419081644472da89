"""Channel profiles: everything that differs between SMS, WhatsApp and voice, as data.

The engine and the flows never branch on the channel; they ask its profile
(:func:`profile_of`): how a reply is finished (numbered lines, buttons or
"say cleaning or press 1"), which TwiML verb carries it, the limits
(1600 characters, SMS segments, WhatsApp's 24-hour window), the path for a
reply that misses the webhook's budget (REST messages, or a voice
``<Redirect>``), the address format (``whatsapp:+1...``) and whose records
a conversation shares (a caller is the same patient as the texter from that
number).

Example::

    profile = profile_of(Channel.SMS)
    out = profile.prepare(Reply(text="Book it?", choices=(Choice("yes", "Yes"),)))
    out.body            # 'Book it?\\n1. Yes'
    profile.address("+14155550123")                 # '+14155550123'
    profile_of(Channel.WHATSAPP).button_title_max   # 20
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Final

from bot.messages import Channel, Reply
from bot.outgoing import OutgoingMessage, finish_sms_reply, finish_spoken_reply, finish_text_reply
from bot.sms.segments import MAX_BODY_CHARS
from bot.storage.base import ConversationKey


class ChoiceStyle(enum.StrEnum):
    """How a reply's choices are offered on a channel."""

    #: ``1. Yes`` lines; the user answers with the number or the title.
    NUMBERED = "numbered"
    #: Quick-reply buttons (a WhatsApp content template, REST only); numbered in TwiML.
    BUTTONS = "buttons"
    #: "Say yes or press 1": speech or keypad.
    SPOKEN = "spoken"


class LateDelivery(enum.StrEnum):
    """Where a turn's replies go when it misses ``REPLY_BUDGET_SECONDS``."""

    #: The webhook answers an empty ``<Response/>``; the replies go by the REST outbox.
    REST = "rest"
    #: The call hears "One moment" and is ``<Redirect>``-ed to the turn's result.
    REDIRECT = "redirect"


@dataclass(frozen=True, slots=True)
class ChannelProfile:
    """One channel's rendering, limits, late-delivery path and address format.

    Example::

        profile_of(Channel.VOICE).twiml_verb   # 'Say'
        profile_of(Channel.SMS).counts_segments  # True
    """

    channel: Channel
    #: The TwiML verb that carries a reply in the webhook's answer.
    twiml_verb: str
    choice_style: ChoiceStyle
    #: Finishes one reply for this channel (choices, normalising, caps).
    finish: Callable[[Reply], OutgoingMessage]
    late_delivery: LateDelivery
    #: The longest body Twilio accepts (None: no limit, e.g. speech).
    max_chars: int | None = None
    #: Replies are billed per SMS segment (GSM-7/UCS-2 counting, model answers capped).
    counts_segments: bool = False
    #: Free-form messages only this long after the user's last message (None: always).
    session_window: timedelta | None = None
    #: Longest button title before choices fall back to numbered lines.
    button_title_max: int | None = None
    #: Approved content templates (``ContentSid``) exist; otherwise their text fallback is sent.
    content_templates: bool = False
    #: Twilio itself answers the single-word STOP/START/HELP keywords (SMS Advanced Opt-Out).
    carrier_answers_keywords: bool = False
    #: The channel whose appointments and opt-outs this one shares (voice: the SMS ones).
    records: Channel | None = None
    #: An opted-out user hears nothing but keyword answers. Not on a call: the
    #: caller rang us, and an SMS opt-out is about texts (none are sent to them).
    opt_out_silences: bool = True

    def prepare(self, reply: Reply) -> OutgoingMessage:
        """The reply finished for this channel."""
        return self.finish(reply)

    def address(self, number: str) -> str:
        """Twilio's address for ``number`` on this channel (``whatsapp:+1...``)."""
        return self.channel.address(number)

    @property
    def records_channel(self) -> Channel:
        """The channel that owns this conversation's patient records."""
        return self.records or self.channel

    @property
    def buttons(self) -> bool:
        """Choices may go out as tappable buttons (REST content templates)."""
        return self.choice_style is ChoiceStyle.BUTTONS


SMS: Final = ChannelProfile(
    channel=Channel.SMS,
    twiml_verb="Message",
    choice_style=ChoiceStyle.NUMBERED,
    finish=finish_sms_reply,
    late_delivery=LateDelivery.REST,
    max_chars=MAX_BODY_CHARS,
    counts_segments=True,
    carrier_answers_keywords=True,
)

WHATSAPP: Final = ChannelProfile(
    channel=Channel.WHATSAPP,
    twiml_verb="Message",
    choice_style=ChoiceStyle.BUTTONS,
    finish=finish_text_reply,
    late_delivery=LateDelivery.REST,
    max_chars=MAX_BODY_CHARS,
    session_window=timedelta(hours=24),
    # WhatsApp quick-reply titles hold 20 characters.
    button_title_max=20,
    content_templates=True,
)

VOICE: Final = ChannelProfile(
    channel=Channel.VOICE,
    twiml_verb="Say",
    choice_style=ChoiceStyle.SPOKEN,
    finish=finish_spoken_reply,
    late_delivery=LateDelivery.REDIRECT,
    records=Channel.SMS,
    opt_out_silences=False,
)

#: The registered profiles, one per :class:`Channel` member (a test holds them in step).
PROFILES: Final[Mapping[Channel, ChannelProfile]] = MappingProxyType(
    {profile.channel: profile for profile in (SMS, WHATSAPP, VOICE)}
)


def records_key(key: ConversationKey) -> ConversationKey:
    """The conversation whose patient records (appointments, opt-out) ``key`` shares.

    A caller is the same patient as the texter from that number; the
    conversation state itself stays per channel.

    >>> records_key(ConversationKey(Channel.VOICE, "+15005550006", "+14155550123")).channel
    <Channel.SMS: 'sms'>
    """
    owner = PROFILES[key.channel].records
    return key if owner is None else ConversationKey(owner, key.bot, key.user)


def profile_of(channel: Channel) -> ChannelProfile:
    """The profile of ``channel``.

    >>> profile_of(Channel.WHATSAPP).session_window
    datetime.timedelta(days=1)
    """
    return PROFILES[channel]
