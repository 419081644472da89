"""Languages a business answers in: profiles, detection, the per-conversation choice.

- :mod:`bot.languages.profile`: one :class:`LanguageProfile` per language
  (dates and times as people read them, the voice, "english please").
- :mod:`bot.languages.detect`: which language a short text is in, or "not sure".
- :mod:`bot.languages.choose`: the conversation's language, kept in its state.
- :mod:`bot.languages.recipients`: the language a reminder or follow-up speaks (the conversation's).
- :mod:`bot.languages.slot_words`: Spanish date and time words read for slot extraction.

See docs/languages.md.
"""
