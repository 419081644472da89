"""Channel profiles: one per channel, and what each says about rendering and limits."""

from __future__ import annotations

from datetime import timedelta

from bot.channels import PROFILES, ChoiceStyle, LateDelivery, profile_of
from bot.messages import Channel, Choice, InboundMessage, Reply

YES_NO = (Choice("yes", "Yes"), Choice("no", "No"))


def test_every_channel_has_exactly_one_profile() -> None:
    assert set(PROFILES) == set(Channel)
    assert all(profile.channel is channel for channel, profile in PROFILES.items())


def test_sms_numbers_choices_and_counts_segments() -> None:
    out = profile_of(Channel.SMS).prepare(Reply(text="Book it? “Sure”", choices=YES_NO))
    assert out.body == 'Book it? "Sure"\n1. Yes\n2. No'
    assert out.segments is not None and out.segments.encoding == "GSM-7"
    assert profile_of(Channel.SMS).carrier_answers_keywords


def test_sms_body_is_capped_at_1600_characters() -> None:
    profile = profile_of(Channel.SMS)
    out = profile.prepare(Reply(text="word " * 500, choices=YES_NO))
    assert profile.max_chars == 1600
    assert len(out.body) <= 1600 and out.body.endswith("1. Yes\n2. No")


def test_whatsapp_has_buttons_a_window_and_content_templates() -> None:
    profile = profile_of(Channel.WHATSAPP)
    assert profile.buttons and profile.button_title_max == 20
    assert profile.session_window == timedelta(hours=24)
    assert profile.content_templates and not profile.carrier_answers_keywords
    out = profile.prepare(Reply(text="Pick *one* 😀", choices=YES_NO))
    assert out.body == "Pick *one* 😀\n1. Yes\n2. No" and out.segments is None
    assert profile.address("+14155550123") == "whatsapp:+14155550123"


def test_voice_speaks_choices_and_shares_the_sms_records() -> None:
    profile = profile_of(Channel.VOICE)
    assert profile.twiml_verb == "Say" and profile.choice_style is ChoiceStyle.SPOKEN
    assert profile.late_delivery is LateDelivery.REDIRECT
    assert profile.records_channel is Channel.SMS
    out = profile.prepare(Reply(text="Book it? 👍 https://x.example/y", choices=YES_NO, media=("https://m",)))
    assert out.body == "Book it? Say yes or press 1. Say no or press 2."
    assert out.media == ()
    assert profile.address("+14155550123") == "+14155550123"


def test_text_channels_keep_their_own_records() -> None:
    assert profile_of(Channel.SMS).records_channel is Channel.SMS
    assert profile_of(Channel.WHATSAPP).records_channel is Channel.WHATSAPP


def test_event_id_is_the_message_sid_or_call_sid_and_turn() -> None:
    sms = InboundMessage("SM" + "1" * 32, Channel.SMS, "+14155550123", "+15005550006")
    assert sms.event_id == sms.message_sid
    call = InboundMessage("CA" + "2" * 32, Channel.VOICE, "+14155550123", "+15005550006", turn=2)
    assert call.event_id == "CA" + "2" * 32 + ":2"
    assert call.event_id != InboundMessage("CA" + "2" * 32, Channel.VOICE, "+1", "+2", turn=3).event_id
