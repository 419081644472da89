"""Text normalisation shared by the rules, the classifier and slot extraction.

People text "cn i bk 4 tmrw pls 🙏🏽"; the rules and the classifier should see
"can i book for tomorrow please 🙏". Two steps, applied in this order:

- :func:`normalize`: Unicode compatibility forms, look-alike punctuation
  (curly quotes, dashes), zero-width characters and emoji skin tones removed,
  lower case, runs of 3+ equal characters cut to 2 ("yesss" -> "yess"),
  whitespace collapsed.
- :func:`expand_sms`: common SMS spellings to words ("tmrw" -> "tomorrow").

:func:`prepare` does both; patterns in ``intents/intents.yaml`` are written
against its output.

Example::

    prepare("Cn I bk 4 TMRW pls?")   # "can i book for tomorrow please?"
    prepare("at 4pm")                # "at 4pm" (a time, not "for")
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable

# Look-alikes people's phones insert; mapping them keeps patterns simple.
_TRANSLATE = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201b": "'", "\u2032": "'",
        "\u201c": '"', "\u201d": '"', "\u201f": '"', "\u2033": '"',
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
        "\u2026": "...",
        "\u00a0": " ", "\u2007": " ", "\u202f": " ",
    }
)
# Zero-width characters, variation selectors and skin-tone modifiers: they
# change how an emoji looks, not what it means ("👍🏽" is "👍").
_INVISIBLE = re.compile("[\u200b-\u200d\u2060\ufeff\ufe0e\ufe0f\U0001f3fb-\U0001f3ff]")
_REPEATS = re.compile(r"(.)\1{2,}")
_SPACES = re.compile(r"\s+")

# Whole-word SMS spellings -> words. Only unambiguous ones: "y" and "n" are
# left alone because alone they mean yes/no, and "2" because it is a choice.
SMS_EXPANSIONS: dict[str, str] = {
    "cn": "can", "cld": "could", "cud": "could", "wud": "would", "shud": "should",
    "bk": "book", "bkd": "booked", "bkg": "booking", "buk": "book",
    "tmrw": "tomorrow", "tmrow": "tomorrow", "tmr": "tomorrow", "tmw": "tomorrow",
    "tmro": "tomorrow", "tmoro": "tomorrow", "tomoro": "tomorrow", "tomorow": "tomorrow",
    "tommorow": "tomorrow", "tommorrow": "tomorrow", "tomorrw": "tomorrow",
    "2moro": "tomorrow", "2morrow": "tomorrow", "2mrw": "tomorrow", "2mro": "tomorrow",
    "2day": "today", "tday": "today", "2nite": "tonight", "tonite": "tonight",
    "u": "you", "yu": "you", "ur": "your", "urs": "yours", "r": "are",
    "pls": "please", "plz": "please", "plez": "please", "pleas": "please", "pl": "please",
    "appt": "appointment", "appts": "appointments", "apt": "appointment",
    "apts": "appointments", "appnt": "appointment", "apmt": "appointment",
    "wat": "what", "wut": "what", "wht": "what", "wats": "whats", "whn": "when",
    "wen": "when", "whr": "where", "wher": "where", "hw": "how", "hws": "hows",
    "thx": "thanks", "thnx": "thanks", "thanx": "thanks", "tnx": "thanks", "tx": "thanks",
    "ty": "thank you", "tyvm": "thank you very much",
    "msg": "message", "txt": "text", "txts": "texts", "txting": "texting",
    "abt": "about", "bout": "about", "b4": "before", "bc": "because", "cuz": "because",
    "coz": "because", "rn": "right now", "nxt": "next", "wk": "week", "wks": "weeks", "hr": "hour",
    "hrs": "hours", "opn": "open", "addr": "address", "resched": "reschedule",
    "reschedual": "reschedule", "canx": "cancel", "cxl": "cancel", "cncl": "cancel",
    "avail": "available", "k": "ok", "kk": "ok", "okk": "ok", "okey": "ok",
    "wanna": "want to", "gonna": "going to", "gotta": "got to", "lemme": "let me",
    "gimme": "give me", "im": "i am", "ive": "i have", "dont": "don't", "cant": "can't",
    "wont": "won't", "whats": "what is", "wheres": "where is", "hows": "how is",
    "ppl": "people", "sry": "sorry", "srry": "sorry", "thru": "through", "c": "see",
    "cya": "see you", "ttyl": "talk to you later", "gn": "good night",
    "gm": "good morning",
}
_SMS_WORD = re.compile(
    r"(?<![\w'])(" + "|".join(sorted(map(re.escape, SMS_EXPANSIONS), key=len, reverse=True)) + r")(?![\w'])"
)
# "4" means "for" unless it is a time or a date part ("at 4", "4pm", "4:30", "3/4").
_FOUR = re.compile(r"(?<![\w/:.@])(?<!at )(?<!@ )4(?![\w/:.])(?!\s*(?:am|pm|a\.m|p\.m|o'?clock|ish)\b)")


def normalize(text: str) -> str:
    """Canonical form of ``text``: NFKC, straight quotes, lower case, tidy spaces.

    >>> normalize("  Thanks!!! \u2019\U0001f44d\U0001f3fd ")
    "thanks!! '\U0001f44d"
    """
    text = unicodedata.normalize("NFKC", text).translate(_TRANSLATE)
    text = _INVISIBLE.sub("", text).lower()
    text = _REPEATS.sub(r"\1\1", text)
    return _SPACES.sub(" ", text).strip()


def expand_sms(text: str, *, numbers: bool = True) -> str:
    """Replace SMS spellings in already :func:`normalize`-d text.

    ``numbers=False`` leaves digits alone ("4" stays "4"), for slot
    extraction, where a bare number may be a time ("tmrw 4").

    >>> expand_sms("cn i bk 4 tmrw")
    'can i book for tomorrow'
    """
    text = _SMS_WORD.sub(lambda m: SMS_EXPANSIONS[m.group(1)], text)
    return _FOUR.sub("for", text) if numbers else text


def respeller(spellings: Iterable[tuple[str, str]]) -> Callable[[str], str]:
    """A function that replaces whole words people misspell with the word meant.

    The business's own words live in ``intents/intents.yaml`` (``spellings:``),
    not here: another business has other words.

    >>> respeller([("dentst", "dentist")])("Is the dentst in?")
    'Is the dentist in?'
    """
    table = {wrong.lower(): right for wrong, right in spellings}
    if not table:
        return lambda text: text
    words = re.compile(
        r"(?<![\w'])(" + "|".join(sorted(map(re.escape, table), key=len, reverse=True)) + r")(?![\w'])",
        re.IGNORECASE,
    )
    return lambda text: words.sub(lambda m: table[m.group(1).lower()], text)


def prepare(text: str) -> str:
    """:func:`normalize` then :func:`expand_sms`: what rules and classifier read.

    >>> prepare("Wen r u opn 2moro?")
    'when are you open tomorrow?'
    """
    return expand_sms(normalize(text))
