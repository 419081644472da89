"""The conversation view's "as the user saw it": each bot message filed under the message it followed,
with its options (numbered lines on SMS, quick-reply or list buttons on WhatsApp)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.messages import Channel, Choice
from devtools.simulator import ContentTemplate, MessageOrigin, SimMessage
from devtools.simulator.devphone.seen import delivered_per_turn

AT = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
QUICK = ContentTemplate(sid="HX" + "a" * 32, name="quick_reply_2", body="{{1}}", content_type="twilio/quick-reply")
LIST = ContentTemplate(sid="HX" + "b" * 32, name="services_list", body="{{1}}", content_type="twilio/list-picker")


def message(sid: str, origin: MessageOrigin, body: str, channel: Channel = Channel.SMS, **extra: Any) -> SimMessage:
    return SimMessage(sid=sid, account_sid="AC" + "0" * 32, channel=channel,
                      direction="inbound" if origin is MessageOrigin.USER else "outbound-api", origin=origin,
                      from_=None, to="+14155550100", body=body, status="delivered", date_created=AT,
                      date_updated=AT, **extra)


def test_sms_numbered_options_are_listed_under_the_message_they_answered() -> None:
    thread = [
        message("SM1", MessageOrigin.USER, "book a cleaning tmrw 3pm"),
        message("SM2", MessageOrigin.BOT, "Book a cleaning on Tue, Mar 3 at 3:00 PM?\n1. Yes\n2. No"),
        message("SM3", MessageOrigin.USER, "1"),
        message("SM4", MessageOrigin.BOT, "You're booked!"),
        message("SM5", MessageOrigin.TWILIO, "You have successfully been unsubscribed."),  # not the bot's
    ]
    seen = delivered_per_turn(thread, {})
    assert [(s.style, s.options) for s in seen["SM1"]] == [("numbered", ("1. Yes", "2. No"))]
    assert [(s.body, s.style, s.options) for s in seen["SM3"]] == [("You're booked!", None, ())]


def test_whatsapp_buttons_keep_their_titles_and_template_and_a_list_is_a_list() -> None:
    thread = [
        message("SM1", MessageOrigin.USER, "book pls", Channel.WHATSAPP),
        message("SM2", MessageOrigin.BOT, "Book it?", Channel.WHATSAPP, content_sid=QUICK.sid,
                buttons=(Choice("yes", "Yes"), Choice("no", "No"))),
        message("SM3", MessageOrigin.USER, "what do u offer", Channel.WHATSAPP),
        message("SM4", MessageOrigin.BOT, "Pick a service", Channel.WHATSAPP, content_sid=LIST.sid,
                buttons=(Choice("cleaning", "Cleaning"), Choice("checkup", "Checkup"))),
    ]
    seen = delivered_per_turn(thread, {QUICK.sid: QUICK, LIST.sid: LIST})
    (offer,) = seen["SM1"]
    assert (offer.style, offer.options, offer.template) == ("buttons", ("Yes", "No"), "quick_reply_2")
    (services,) = seen["SM3"]
    assert (services.style, services.options) == ("list", ("Cleaning", "Checkup"))
    assert services.to_dict()["options"] == ["Cleaning", "Checkup"]
