"""The language of a message the bot starts on its own: a reminder, a follow-up, a recall invitation.

Replies follow the conversation's language turn by turn (:mod:`bot.languages.choose`);
a message the bot starts answers no turn, so it speaks the language the
recipient's conversation has between turns (:meth:`Languages.between_turns`):

1. the conversation's kept language (``state.data["language"]``);
2. the bot number's default (``language_numbers`` in ``business.yaml``);
3. the business's first language.

:class:`Speaking` then writes in it: dates and times as the language's
profile writes them, services by the language's names
(``intents/<code>/business.yaml``), and the content template's variant in
that language (``es:`` under the template in ``intents/templates.yaml``).
A business with one language reads no state at all.

Example::

    recipients = RecipientLanguages(store, brain.languages, brain.service_labels)
    speaking = await recipients.speaking(appt.key, business)
    speaking.code                                   # 'es'
    speaking.when(appt.start)                       # 'jueves 5 de marzo a las 9:00 am'
    speaking.service("cleaning")                    # 'limpieza'
    speaking.template("appointment_reminder", {...}).language   # 'es'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.business import Business
from bot.languages.choose import STATE_KEY, Languages
from bot.languages.profile import DEFAULT_LANGUAGE, PROFILES, LanguageProfile, profile_for
from bot.messages import TemplateMessage
from bot.storage.base import ConversationKey, ConversationState, ConversationStore


@dataclass(frozen=True, slots=True)
class Speaking:
    """Writing a bot-started message in one language: its dates, service names and template variant."""

    profile: LanguageProfile
    business: Business | None
    #: This language's service names by key ({"cleaning": "Limpieza"}); empty: the business's own.
    labels: Mapping[str, str]

    @property
    def code(self) -> str:
        return self.profile.code

    def name(self, name: str | None) -> str:
        """How the greeting addresses the patient: their name, else the language's word ("Hi there")."""
        return (name or "").strip() or self.profile.unnamed

    def when(self, moment: datetime) -> str:
        """``Thu, Mar 5 at 9:00 AM`` / ``jueves 5 de marzo a las 9:00 am``, in the business's zone."""
        return self.profile.fmt_when(moment, self.business.tz if self.business is not None else UTC)

    def service(self, key: str) -> str:
        """The service as a sentence names it, lower case (``cleaning``, ``limpieza``); unknown: ``key``."""
        if key in self.labels:
            return self.labels[key].lower()
        found = self.business.service(key) if self.business is not None else None
        return found.label.lower() if found is not None else key

    def template(self, name: str, variables: Mapping[str, str]) -> TemplateMessage:
        """The content template ``name`` in this language (its variant; the template itself in the default)."""
        return TemplateMessage(name, variables, None if self.code == DEFAULT_LANGUAGE else self.code)


class RecipientLanguages:
    """Which language a bot-started message speaks to a conversation (see the module docstring).

    ``languages`` is the Brain's (None: one language, the default);
    ``service_labels`` each other language's service names
    (:attr:`bot.brain.dispatch.Brain.service_labels`).
    """

    def __init__(self, store: ConversationStore | None, languages: Languages | None = None,
                 service_labels: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.store = store
        self.languages = languages
        self.service_labels = dict(service_labels or {})

    @property
    def codes(self) -> tuple[str, ...]:
        """The business's languages, the default first."""
        return self.languages.codes if self.languages is not None else (DEFAULT_LANGUAGE,)

    async def language_of(self, key: ConversationKey) -> str:
        """The language of ``key``'s conversation between turns."""
        if self.languages is None or len(self.languages.codes) < 2:
            return self.codes[0]
        state = await self.store.load(key) if self.store is not None else None
        return self.languages.between_turns(key.bot, state)

    async def speaking(self, key: ConversationKey, business: Business | None) -> Speaking:
        """How to write to ``key``'s conversation: its language, over ``business``'s facts."""
        code = await self.language_of(key)
        return Speaking(profile_for(code), business, self.service_labels.get(code, {}))


#: One language, the business's own: what a job built without the Brain's languages speaks.
ONE_LANGUAGE = RecipientLanguages(None)


def speaking_kept(state: ConversationState, business: Business | None = None) -> Speaking:
    """How to write to a conversation whose state is at hand, just after a turn: in the language it keeps.

    For a message sent in place of a reply (WhatsApp's ``welcome_back`` when the window closed).
    """
    kept = state.data.get(STATE_KEY)
    return Speaking(profile_for(kept if isinstance(kept, str) and kept in PROFILES else DEFAULT_LANGUAGE),
                    business, {})
