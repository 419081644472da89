"""Smart Encoding: look-alikes become GSM-7, real Unicode text is left alone."""

from __future__ import annotations

import pytest

from bot.sms.normalize import normalize
from bot.sms.segments import count_segments, is_gsm7


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("“Hello”", '"Hello"'),
        ("‘Hi’ — it’s «fine» „ja“", '\'Hi\' - it\'s "fine" "ja"'),
        ("9–5", "9-5"),
        ("• cleaning\n• checkup", "- cleaning\n- checkup"),
        ("Wait…", "Wait..."),
        ("Mon\u00a09:00", "Mon 9:00"),  # one space, not Twilio's calculator's two
        ("a\u2009b\u202fc\u3000d\te", "a b c d e"),
        ("zero\u200bwidth\ufeff\u2060joined\u00ad", "zerowidthjoined"),
        ("ＯＫ！ １２３", "OK! 123"),
        ("½ hour, ¼ and ¾", "1/2 hour, 1/4 and 3/4"),
        ("1½ hours", "1 1/2 hours"),  # not "11/2"
        ("2×3 ÷ 4", "2x3 / 4"),
        ("`code`", "'code'"),
        ("Cafe\u0301", "Café"),  # NFC: é is GSM-7
        ("line\u2028break", "line\nbreak"),
        ("bell\x07 and nul\x00", "bell and nul"),
    ],
)
def test_look_alikes_become_gsm7(text: str, expected: str) -> None:
    assert normalize(text) == expected
    assert is_gsm7(expected)


def test_curly_quotes_cost_a_segment_until_normalised() -> None:
    text = "We’re open Mon–Fri 8–5 and Sat 9–1. " * 4  # 144 chars
    assert count_segments(text).encoding == "UCS-2"
    assert count_segments(text).segments == 3
    assert count_segments(normalize(text)).encoding == "GSM-7"
    assert count_segments(normalize(text)).segments == 1


@pytest.mark.parametrize(
    "text",
    [
        "See you “soon” 🙂",  # emoji stays, so the quotes stay too
        "预约 “明天” 上午",  # Chinese, with full-width punctuation
        "Ｈｉ 👋",
        "Привет — это тест",
        "👨\u200d👩\u200d👧 family",  # the ZWJ holds the emoji together
        "façade – ok",  # lowercase ç has no GSM-7 form; we don't transliterate
    ],
)
def test_text_that_stays_ucs2_is_untouched(text: str) -> None:
    assert normalize(text) == text
    assert count_segments(normalize(text)).encoding == "UCS-2"


@pytest.mark.parametrize("text", ["plain ASCII", "Ça coûte 10€ {x}", "", "a\r\nb"])
def test_gsm7_text_is_untouched(text: str) -> None:
    assert normalize(text) == text


@pytest.mark.parametrize("text", ["“Hi”…", "See “you” 🙂", "½ ＯＫ\u00a0", "ç"])
def test_idempotent(text: str) -> None:
    assert normalize(normalize(text)) == normalize(text)
