"""Finishing replies for SMS: numbered choices, normalisation, caps."""

from __future__ import annotations

import pytest

from bot.messages import Choice
from bot.sms.render import (
    DEFAULT_MAX_SEGMENTS,
    cap_segments,
    finish_sms,
    numbered_options,
    pick_choice,
)
from bot.sms.segments import MAX_BODY_CHARS, body_length, count_segments

YES_NO = (Choice("yes", "Yes"), Choice("no", "No"))


def test_choices_become_numbered_lines() -> None:
    assert finish_sms("Book it?", YES_NO) == "Book it?\n1. Yes\n2. No"


def test_no_choices() -> None:
    assert finish_sms("  Hello there.\n") == "Hello there."


def test_only_choices() -> None:
    assert finish_sms("", YES_NO) == "1. Yes\n2. No"


def test_titles_are_one_line() -> None:
    assert numbered_options([Choice("a", " Tue\n 9:00\u2028AM ")]) == "1. Tue 9:00 AM"


def test_normalises_text_and_titles_together() -> None:
    body = finish_sms("We’re free at…", [Choice("a", "Tue – 9:00"), Choice("b", "“Later”")])
    assert body == 'We\'re free at...\n1. Tue - 9:00\n2. "Later"'
    assert count_segments(body).encoding == "GSM-7"


def test_emoji_title_keeps_whole_message_as_is() -> None:
    body = finish_sms("It’s booked", [Choice("ok", "👍")])
    assert body == "It’s booked\n1. 👍"


def test_body_capped_at_1600_keeping_the_choices() -> None:
    text = "Here are the details of your appointment. " * 60  # 2520 chars
    body = finish_sms(text, YES_NO)
    assert body_length(body) <= MAX_BODY_CHARS
    head, options = body.split("\n", 1)
    assert options == "1. Yes\n2. No"  # the user still sees how to answer
    kept = head.removesuffix("...")
    assert head.endswith("...")
    assert text.startswith(kept)
    assert text[len(kept)] in " ."  # cut at a word boundary (trailing "." dropped)
    assert len(body) > MAX_BODY_CHARS - 20  # and not much earlier than needed


def test_body_capped_at_1600_at_a_word_boundary() -> None:
    text = "word " * 400  # 2000 chars
    body = finish_sms(text)
    # The last whole word that leaves room for "..." ends at 1594: 1597 in all.
    assert body_length(body) == 1597
    assert body.endswith(" word...")


@pytest.mark.parametrize("text", ["x" * 1599, "x" * 1600, "x" * 1601, "x" * 5000])
def test_never_over_1600(text: str) -> None:
    body = finish_sms(text, YES_NO)
    assert body_length(body) <= MAX_BODY_CHARS


def test_emoji_counted_in_utf16_units_for_the_cap() -> None:
    body = finish_sms("🙂" * 1000)  # 2000 UTF-16 units
    assert body_length(body) <= MAX_BODY_CHARS
    assert body.startswith("🙂")
    assert body.endswith("🙂...")  # never half a surrogate pair


def test_cap_segments_default_is_two() -> None:
    assert DEFAULT_MAX_SEGMENTS == 2
    answer = "We open at 8. " * 40
    assert count_segments(cap_segments(answer)).segments == 2


def test_cap_segments_keeps_short_text() -> None:
    assert cap_segments("  Short answer.  ") == "Short answer."


def test_cap_segments_cuts_after_a_sentence() -> None:
    answer = " ".join(f"Sentence number {n} is here." for n in range(30))
    capped = cap_segments(answer, 1)
    assert count_segments(capped).segments == 1
    assert capped.endswith("is here.")
    assert answer.startswith(capped)


def test_cap_segments_cuts_at_a_word_without_sentences() -> None:
    answer = "lorem ipsum " * 50
    capped = cap_segments(answer, 1)
    assert count_segments(capped).segments == 1
    assert capped.endswith("...")
    assert capped.removesuffix("...").split()[-1] in {"lorem", "ipsum"}


def test_cap_segments_counts_after_normalising() -> None:
    # Curly apostrophes would make this UCS-2 (3 segments); normalised it is one.
    answer = "We’re open weekdays and it’s easy to book. " * 3  # ~130 chars
    assert cap_segments(answer, 1) == answer.replace("’", "'").strip()


def test_cap_segments_ucs2_never_splits_emoji() -> None:
    answer = "🙂" * 100
    capped = cap_segments(answer, 1)
    count = count_segments(capped)
    assert count.segments == 1
    assert capped.endswith("🙂...")


def test_cap_segments_rejects_zero() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        cap_segments("hi", 0)


@pytest.mark.parametrize(
    ("answer", "payload"),
    [
        ("1", "yes"),
        (" 2 ", "no"),
        ("2.", "no"),
        ("#1", "yes"),
        ("2)", "no"),
        ("YES", "yes"),
        ("no", "no"),
    ],
)
def test_pick_choice(answer: str, payload: str) -> None:
    chosen = pick_choice(answer, YES_NO)
    assert chosen is not None
    assert chosen.payload == payload


@pytest.mark.parametrize("answer", ["0", "3", "", "yes please", "１"])
def test_pick_choice_none(answer: str) -> None:
    assert pick_choice(answer, YES_NO) is None
