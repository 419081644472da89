"""Segment counts on known strings, at the boundaries where division is wrong."""

from __future__ import annotations

import pytest

from bot.sms.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    MAX_BODY_CHARS,
    SegmentCount,
    body_length,
    count_segments,
    is_gsm7,
    split_graphemes,
)

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧: 8 UTF-16 units, one grapheme
SMILE = "\U0001f642"  # 🙂: a surrogate pair


def test_max_body_chars() -> None:
    assert MAX_BODY_CHARS == 1600


def test_alphabet_matches_gsm_03_38() -> None:
    assert len(GSM7_BASIC) == 127  # 128 positions less the escape
    assert set("\f[\\]^{|}~€") == GSM7_EXTENSION
    assert "\x1b" not in GSM7_BASIC


@pytest.mark.parametrize("char", ["ç", "`", "á", "’", "\u00a0", "\t", "\x1b", SMILE])
def test_not_gsm7(char: str) -> None:
    assert not is_gsm7(f"abc{char}")


@pytest.mark.parametrize("char", ["Ç", "é", "€", "{", "Ω", "\n", "\r", "@", "¤"])
def test_gsm7(char: str) -> None:
    assert is_gsm7(f"abc{char}")


def test_empty_text_is_zero_segments() -> None:
    assert count_segments("") == SegmentCount("GSM-7", segments=0, units=0, characters=0)


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4), (1530, 10), (1600, 11)],
)
def test_gsm7_boundaries(length: int, segments: int) -> None:
    count = count_segments("a" * length)
    assert count == SegmentCount("GSM-7", segments=segments, units=length, characters=length)


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_boundaries(length: int, segments: int) -> None:
    text = "ç" * length
    assert count_segments(text) == SegmentCount("UCS-2", segments, units=length, characters=length)


def test_extension_characters_cost_two_septets() -> None:
    assert count_segments("[]") == SegmentCount("GSM-7", segments=1, units=4, characters=2)
    assert count_segments("€" * 80).segments == 1  # 160 septets
    assert count_segments("€" * 81).segments == 2


def test_extension_character_never_straddles_segments() -> None:
    # 306 septets is exactly 2 x 153, so division says 2. But after 152 "a"
    # the 2-septet € does not fit in the 1 septet left and moves whole to
    # segment two, which then overflows by one "a" into segment three.
    text = "a" * 152 + "€" + "a" * 152
    count = count_segments(text)
    assert count.units == 306
    assert count.segments == 3
    assert count_segments("a" * 151 + "€" + "a" * 153).segments == 2  # 153 + 153


def test_one_non_gsm_character_switches_everything_to_ucs2() -> None:
    count = count_segments("a" * 159 + "ç")
    assert count.encoding == "UCS-2"
    assert count.segments == 3  # 160 units at 67 per segment
    assert count_segments("{" * 10 + "ç").units == 11  # extension chars cost one unit in UCS-2


def test_emoji_costs_two_units() -> None:
    assert count_segments(SMILE * 35) == SegmentCount("UCS-2", segments=1, units=70, characters=35)
    assert count_segments(SMILE * 35 + "a").segments == 2


def test_surrogate_pair_never_straddles_segments() -> None:
    # 66 units then a 2-unit emoji: it does not fit in 67 and moves on.
    text = "ç" * 66 + SMILE + "ç" * 66  # 134 units: division says 2
    count = count_segments(text)
    assert count.units == 134
    assert count.segments == 3
    assert count_segments("ç" * 65 + SMILE + "ç" * 67).segments == 2  # 67 + 67


def test_whole_grapheme_cluster_moves_to_next_segment() -> None:
    # 60 units + an 8-unit family emoji = 68 > 67: the whole family moves.
    text = "ç" * 60 + FAMILY + "ç" * 60  # 128 units: division says 2
    count = count_segments(text)
    assert count.units == 128
    assert count.characters == 121
    assert count.segments == 3


def test_combining_mark_forces_ucs2() -> None:
    count = count_segments("Cafe\u0301")  # e + combining acute: one grapheme, two code points
    assert count == SegmentCount("UCS-2", segments=1, units=5, characters=4)


def test_oversized_grapheme_is_split_between_code_points() -> None:
    zalgo = "a" + "\u0301" * 100  # one grapheme of 101 units
    assert count_segments(zalgo).segments == 2  # 67 + 34, not an endless segment


def test_crlf_counts_as_two_characters() -> None:
    assert split_graphemes("a\r\nb") == ["a", "\r", "\n", "b"]
    assert split_graphemes("ç\r\nb") == ["ç", "\r", "\n", "b"]
    assert count_segments("a\r\nb").characters == 4


def test_graphemes() -> None:
    assert split_graphemes(f"ok {FAMILY}👍🏽") == ["o", "k", " ", FAMILY, "👍🏽"]


def test_body_length_counts_utf16_units() -> None:
    assert body_length("abc") == 3
    assert body_length(SMILE) == 2
