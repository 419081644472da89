"""Revocations of consent in any reasonable words, from phrase data per language.

US rules (FCC order 24-24) ask a texter to honour a revocation made "in any
reasonable manner", not only Twilio's single-word keywords. This matcher
reads ``intents/consent/<language>.yaml`` and says whether a message
revokes consent, and which words did it. It is precision-first: only the
rules in the data decide; a look-alike ("I can't stop the bleeding", "stop by
tomorrow?", "Stop. I meant friday", "cancel my appointment") stays a normal
message. No model is involved.

Three rules, per sentence (``. ! ? ;`` and new lines split sentences, commas
split clauses):

1. **keyword sentence**: a sentence made only of keywords and filler words
   ("stop please", "STOP ALL", "u can stop now", "who is this? stop"),
   unless a later sentence corrects it ("Stop. I meant friday"), the message
   mentions an emergency ("Stop! I can't stop the bleeding"), or the keyword
   is only the first clause of a longer sentence ("stop, don't book it").
2. **phrase**: a phrase pattern anywhere ("please stop texting me", "no me
   envíen más mensajes"), unless a negation stands right before it in the
   same clause ("I don't want to opt out") or the sentence asks what would
   happen ("if I opt out will I still get reminders?").
3. Typing slips of keywords are read as the keyword ("stpo", "unsubcribe").

Example::

    matcher = RevocationMatcher.from_dir(Path("intents/consent"))
    matcher.match("pls stop")                 # Revocation(language='en', rule='keyword', words='please stop')
    matcher.match("the bus stop") is None     # True
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from rapidfuzz.distance import OSA

from bot.errors import ConfigError

Rule = Literal["keyword", "phrase"]
Tokens = tuple[str, ...]

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
_SENTENCES = re.compile(r"[.!?;\n\u00a1\u00bf]+")
_CLAUSES = re.compile(r"[,:()\u2013\u2014]+|\s-\s")
_WORDS = re.compile(r"[a-z0-9]+")
_REPEATS = re.compile(r"([a-z])\1{2,}")
_JOINED_HYPHEN = re.compile(r"(?<=[a-z])-(?=[a-z])")
#: Shortest word compared by spelling distance to a keyword (short words are too alike).
_FUZZY_MIN = 7
_GAP = 3
#: Texts whose verdicts are remembered (every inbound message is matched; "stop", "hi", "yes" repeat).
MEMO_SIZE = 4096


def normalize(text: str) -> str:
    """Lower case, no accents, no apostrophes, hyphenated words joined.

    >>> normalize("Don't TEXT me — opt-out!!  Envíen más")
    'dont text me \u2014 optout!!  envien mas'
    """
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    text = text.replace("'", "")
    text = _JOINED_HYPHEN.sub("", text)
    return _REPEATS.sub(r"\1\1", text)


@dataclass(frozen=True, slots=True)
class Revocation:
    """A message revoked consent: in which language, by which rule, with which words."""

    language: str
    rule: Rule
    words: str


@dataclass(frozen=True, slots=True)
class _Alt:
    words: frozenset[str]
    optional: bool = False


@dataclass(frozen=True, slots=True)
class _Gap:
    pass


@dataclass(frozen=True, slots=True)
class _End:
    pass


_Element = _Alt | _Gap | _End


@dataclass(frozen=True, slots=True)
class _Sentence:
    tokens: Tokens
    clause_of: tuple[int, ...]  # clause number of each token
    clauses: tuple[Tokens, ...]


class LanguageRules:
    """The compiled rules of one language file."""

    def __init__(self, data: Mapping[str, Any], *, source: str) -> None:
        def words(name: str) -> list[Tokens]:
            return [tuple(str(item).split()) for item in data.get(name) or ()]

        self.language = str(data.get("language") or Path(source).stem)
        groups: dict[str, frozenset[str]] = {
            str(k): frozenset(str(v).split()) for k, v in (data.get("groups") or {}).items()
        }
        self.typos: dict[str, str] = {str(k): str(v) for k, v in (data.get("typos") or {}).items()}
        self.keywords = words("keywords")
        self.filler = words("filler")
        self.corrections = words("corrections")
        self.safety = frozenset(w for seq in words("safety") for w in seq)
        self.negations = words("negations")
        self.questions = words("questions")
        self.gap_stops = frozenset(w for seq in words("gap_stops") for w in seq)
        self.help = frozenset(" ".join(seq) for seq in words("help"))
        self.phrases = [(str(p), _compile(str(p), groups, source)) for p in data.get("phrases") or ()]
        self._fuzzy = sorted({w for seq in self.keywords for w in seq if len(w) >= _FUZZY_MIN})
        # Precomputed for speed (every inbound message is matched): the keyword and
        # filler units by their first word, in their order; and per phrase the words
        # one of which a sentence must hold for it to match (its first required word).
        self._units: dict[str, list[tuple[Tokens, bool]]] = {}
        for unit, is_keyword in [*((k, True) for k in self.keywords), *((f, False) for f in self.filler)]:
            if unit:
                self._units.setdefault(unit[0], []).append((unit, is_keyword))
        self._phrases = [(pattern, _needed(pattern)) for _text, pattern in self.phrases]

    def tokens(self, text: str) -> list[_Sentence]:
        """``text`` as sentences of clauses of words, typos mended."""
        sentences: list[_Sentence] = []
        for raw in _SENTENCES.split(text):
            tokens: list[str] = []
            clause_of: list[int] = []
            clauses: list[Tokens] = []
            for clause in _CLAUSES.split(raw):
                found = tuple(self._mend(w) for w in _WORDS.findall(clause))
                if found:
                    tokens.extend(found)
                    clause_of.extend([len(clauses)] * len(found))
                    clauses.append(found)
            if tokens:
                sentences.append(_Sentence(tuple(tokens), tuple(clause_of), tuple(clauses)))
        return sentences

    def _mend(self, word: str) -> str:
        if word in self.typos:
            return self.typos[word]
        if len(word) >= _FUZZY_MIN:
            for keyword in self._fuzzy:
                if word != keyword and OSA.distance(word, keyword, score_cutoff=2) <= 2:
                    return keyword
        return word

    def match(self, sentences: Sequence[_Sentence]) -> Revocation | None:
        return self._phrase(sentences) or self._keyword_sentence(sentences)

    def is_help(self, sentences: Sequence[_Sentence]) -> bool:
        return len(sentences) == 1 and " ".join(sentences[0].tokens) in self.help

    # -- rule 1 -------------------------------------------------------------
    def _keyword_sentence(self, sentences: Sequence[_Sentence]) -> Revocation | None:
        if any(w in self.safety for s in sentences for w in s.tokens):
            return None
        for i, sentence in enumerate(sentences):
            found = self._keyword_only(sentence.tokens)
            if found is None and len(sentence.clauses) > 1:
                # "who is this, stop": the last clause counts; a first one ("stop, don't book it") does not.
                found = self._keyword_only(sentence.clauses[-1])
            if found is None:
                continue
            later = [t for s in sentences[i + 1 :] for t in (s.tokens,)]
            if any(_contains(t, c) for t in later for c in self.corrections):
                continue
            return Revocation(self.language, "keyword", found)
        return None

    def _keyword_only(self, tokens: Tokens) -> str | None:
        """The keyword of ``tokens`` when they are only keywords and filler words."""
        n = len(tokens)
        # reach[i]: (tokens[:i] segments into units, a keyword seen, the keyword's words)
        reach: list[tuple[bool, str] | None] = [None] * (n + 1)
        reach[0] = (False, "")
        for i in range(n):
            here = reach[i]
            if here is None:
                continue
            for unit, is_keyword in self._units.get(tokens[i], ()):
                j = i + len(unit)
                if j <= n and tokens[i:j] == unit:
                    seen = here[0] or is_keyword
                    words = here[1] or (" ".join(unit) if is_keyword else "")
                    if reach[j] is None or (seen and not reach[j][0]):  # type: ignore[index]
                        reach[j] = (seen, words)
        end = reach[n]
        return end[1] if end is not None and end[0] else None

    # -- rule 2 -------------------------------------------------------------
    def _phrase(self, sentences: Sequence[_Sentence]) -> Revocation | None:
        for sentence in sentences:
            tokens = sentence.tokens
            present = set(tokens)
            if any(q[0] in present and _contains(tokens, q) for q in self.questions if q):
                continue
            for pattern, needed in self._phrases:
                if needed is not None and needed.isdisjoint(present):
                    continue  # a word it requires is missing: it cannot match anywhere
                for start in range(len(tokens)):
                    end = self._match_at(pattern, 0, tokens, start)
                    if end is None or self._negated(sentence, start):
                        continue
                    return Revocation(self.language, "phrase", " ".join(tokens[start:end]))
        return None

    def _match_at(self, pattern: Sequence[_Element], k: int, tokens: Tokens, i: int) -> int | None:
        """The end of a match of ``pattern[k:]`` at ``tokens[i:]``, or None."""
        if k == len(pattern):
            return i
        element = pattern[k]
        if isinstance(element, _End):
            return i if self._only_filler(tokens[i:]) else None
        if isinstance(element, _Gap):
            for skip in range(_GAP + 1):
                if i + skip > len(tokens) or any(t in self.gap_stops for t in tokens[i : i + skip]):
                    break
                end = self._match_at(pattern, k + 1, tokens, i + skip)
                if end is not None:
                    return end
            return None
        if i < len(tokens) and tokens[i] in element.words:
            end = self._match_at(pattern, k + 1, tokens, i + 1)
            if end is not None:
                return end
        return self._match_at(pattern, k + 1, tokens, i) if element.optional else None

    def _only_filler(self, tokens: Tokens) -> bool:
        i = 0
        while i < len(tokens):
            for unit in self.filler:
                if tokens[i : i + len(unit)] == unit:
                    i += len(unit)
                    break
            else:
                return False
        return True

    def _negated(self, sentence: _Sentence, start: int) -> bool:
        clause = sentence.clause_of[start]
        low = start
        while low > 0 and start - low < _GAP and sentence.clause_of[low - 1] == clause:
            low -= 1
        before = sentence.tokens[low:start]
        return any(_contains(before, n) for n in self.negations)


def _contains(tokens: Sequence[str], seq: Tokens) -> bool:
    n = len(seq)
    return n > 0 and any(tuple(tokens[i : i + n]) == seq for i in range(len(tokens) - n + 1))


def _needed(pattern: Sequence[_Element]) -> frozenset[str] | None:
    """The words of the pattern's first required word (a match consumes one of them), or None."""
    return next((e.words for e in pattern if isinstance(e, _Alt) and not e.optional), None)


def _compile(phrase: str, groups: Mapping[str, frozenset[str]], source: str) -> list[_Element]:
    elements: list[_Element] = []
    for part in phrase.split():
        if part == "...":
            elements.append(_Gap())
            continue
        if part == "$":
            elements.append(_End())
            continue
        optional = part.endswith("?")
        part = part.rstrip("?")
        choices: set[str] = set()
        for alt in part.split("|"):
            if alt.startswith("@"):
                if alt[1:] not in groups:
                    raise ConfigError(f"{source}: phrase {phrase!r} uses unknown group {alt!r}")
                choices |= groups[alt[1:]]
            elif alt:
                choices.add(alt)
        if not choices:
            raise ConfigError(f"{source}: phrase {phrase!r} has an empty word")
        elements.append(_Alt(frozenset(choices), optional))
    return elements


class RevocationMatcher:
    """Every language's rules; a message revokes consent when any language says so.

    Languages are matched together: a Spanish speaker may text "baja" in an
    English conversation.
    """

    def __init__(self, languages: Iterable[LanguageRules]) -> None:
        self.languages = tuple(languages)
        # Verdicts by body: the rules are a pure function of the text.
        self._matches: dict[str, Revocation | None] = {}
        self._helps: dict[str, str | None] = {}

    @classmethod
    def from_dir(cls, folder: Path) -> RevocationMatcher:
        """Load ``folder/*.yaml`` (one file per language)."""
        files = sorted(folder.glob("*.yaml"))
        if not files:
            raise ConfigError(f"no revocation phrase files (*.yaml) in {folder}")
        rules = []
        for path in files:
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise ConfigError(f"{path}: {exc}") from None
            rules.append(LanguageRules(data, source=str(path)))
        return cls(rules)

    def match(self, body: str) -> Revocation | None:
        """The revocation ``body`` makes, or None.

        >>> m = RevocationMatcher.from_dir(Path("intents/consent"))
        >>> m.match("Stop. I meant friday") is None, m.match("ya no me manden mensajes").language
        (True, 'es')
        """
        if body in self._matches:
            return self._matches[body]
        text = normalize(body)
        found = next((m for rules in self.languages if (m := rules.match(rules.tokens(text))) is not None), None)
        _remember(self._matches, body, found)
        return found

    def is_help(self, body: str) -> str | None:
        """The language whose help word ``body`` is alone ("ayuda"), or None."""
        if body in self._helps:
            return self._helps[body]
        text = normalize(body)
        language = next((rules.language for rules in self.languages if rules.is_help(rules.tokens(text))), None)
        _remember(self._helps, body, language)
        return language


def _remember(memo: dict[str, Any], key: str, value: Any) -> None:
    if len(memo) >= MEMO_SIZE:
        memo.pop(next(iter(memo)))  # the oldest first
    memo[key] = value
