"""Voice TwiML, built with the official SDK's ``VoiceResponse``.

Every spoken line is a ``<Say>`` with the configured voice and language
(``VOICE_NAME``, ``VOICE_LANGUAGE``). While the conversation goes on, the
lines are inside a ``<Gather input="speech dtmf">`` whose ``action`` is the
next turn's URL; after it come one re-prompt (a second ``<Gather>`` to the
same URL) and a polite goodbye with ``<Hangup/>``, which Twilio plays only
when the caller says nothing.

Example::

    script = CallScript(voice="Polly.Joanna-Neural", language="en-US", timeout=5, hints=("cleaning",))
    script.listen(["Hi! How can I help?"], action="/twilio/voice/turn?n=1",
                  reprompt="Are you still there?", goodbye="Goodbye!")
    # '<?xml ...><Response><Gather action="/twilio/voice/turn?n=1" hints="cleaning" input="speech dtmf" ...>'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

#: Twilio's limit on the ``hints`` attribute: at most 500 entries, each at most 100 characters.
MAX_HINTS = 500


@dataclass(frozen=True, slots=True)
class CallScript:
    """How the bot speaks and listens on a call: voice, language, patience, speech hints."""

    voice: str
    language: str
    timeout: int
    hints: tuple[str, ...] = ()

    def listen(self, lines: Sequence[str], *, action: str, reprompt: str, goodbye: str) -> str:
        """Say ``lines`` and listen; on silence re-prompt once, then say goodbye and hang up."""
        response = VoiceResponse()
        response.append(self._gather(lines, action))
        response.append(self._gather([reprompt], action))
        self._say(response, goodbye)
        response.hangup()
        return str(response.to_xml())

    def hang_up(self, lines: Sequence[str]) -> str:
        """Say ``lines``, then end the call."""
        response = VoiceResponse()
        for line in lines:
            self._say(response, line)
        response.hangup()
        return str(response.to_xml())

    def connect(self, lines: Sequence[str], *, number: str, caller_id: str, timeout: int, action: str) -> str:
        """Say ``lines``, then ``<Dial>`` ``number``; Twilio posts ``DialCallStatus`` to ``action``."""
        response = VoiceResponse()
        for line in lines:
            self._say(response, line)
        dial = Dial(caller_id=caller_id or None, timeout=timeout, action=action, method="POST")
        dial.number(number)
        response.append(dial)
        return str(response.to_xml())

    def hold(self, lines: Sequence[str], *, redirect: str) -> str:
        """Say ``lines`` ("One moment"), then fetch ``redirect`` for what comes next."""
        response = VoiceResponse()
        for line in lines:
            self._say(response, line)
        response.redirect(redirect, method="POST")
        return str(response.to_xml())

    def _gather(self, lines: Sequence[str], action: str) -> Gather:
        gather = Gather(
            input="speech dtmf", action=action, method="POST", timeout=self.timeout,
            speech_timeout="auto", language=self.language,
            hints=", ".join(h[:100] for h in self.hints[:MAX_HINTS]) or None,
        )
        for line in lines:
            self._say(gather, line)
        return gather

    def _say(self, parent: VoiceResponse | Gather, text: str) -> None:
        if text.strip():
            parent.say(text, voice=self.voice, language=self.language)
