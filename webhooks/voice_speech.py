"""What a call hears, and in which language: the call script, spoken lines, listening again, action URLs.

The voice webhooks (:mod:`webhooks.voice`) answer every request with TwiML
built here: lines rendered from ``prompts/replies`` (a ``.voice.j2`` variant
first) and finished for speech, in the conversation's language (its voice,
``es-US``) when the business speaks more than one; each ``action`` URL is
relative and carries the call's turn counter (and the language).

Example::

    twiml_response(listen(services, request, [spoken(services, "voice_say_again", "es")], "es", n=3))
    call_script(services, "es").hang_up([spoken(services, "goodbye", "es")])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import Request, Response

from bot.channels import profile_of
from bot.languages.profile import DEFAULT_LANGUAGE, profile_for
from bot.messages import Channel, InboundMessage, Reply
from webhooks.services import Services
from webhooks.twiml import TWIML_MEDIA_TYPE
from webhooks.voice_twiml import CallScript

#: The voice channel's profile: how a reply is finished for speech.
VOICE: Final = profile_of(Channel.VOICE)


def action_url(request: Request, step: str, lang: str | None = None, **params: Any) -> str:
    """A relative action URL under ``/twilio/voice/`` (the turn counter is in its signed query).

    A call in another language than the business's own carries it (``lang=es``), so the
    lines said before the next turn (a re-prompt, "I think you said ...") are in it too.
    """
    root = request.scope.get("root_path", "")
    if lang and lang != DEFAULT_LANGUAGE:
        params = {**params, "lang": lang}
    return f"{root}/twilio/voice/{step}?{urlencode(params)}"


def call_script(services: Services, lang: str | None = None) -> CallScript:
    """How the call speaks: ``VOICE_NAME``/``VOICE_LANGUAGE``, or another language's voice (``es-US``)."""
    settings = services.settings
    languages = _languages(services)
    speaking = languages.get(lang or "") if languages is not None else None
    business = speaking.business if speaking is not None else business_of(services)
    hints = tuple(s.label for s in business.services.values()) if business is not None else ()
    if speaking is None:
        return CallScript(voice=settings.voice_name, language=settings.voice_language,
                          timeout=settings.voice_gather_timeout_seconds, hints=hints)
    profile = profile_for(speaking.business.language)
    return CallScript(voice=profile.voice_name, language=profile.voice_language,
                      timeout=settings.voice_gather_timeout_seconds, hints=hints)


def _languages(services: Services) -> Mapping[str, Any] | None:
    """The Brain's other languages (``translations``), by code; None for another handler."""
    translations = getattr(services.handler, "translations", None)
    return translations if isinstance(translations, Mapping) and translations else None


def number_language(services: Services, call: InboundMessage) -> str | None:
    """The language the called number starts in (``language_numbers`` in business.yaml)."""
    business = business_of(services)
    numbers = getattr(business, "language_numbers", None) or {}
    return numbers.get(call.bot)


def asked_language(services: Services, request: Request) -> str | None:
    """The language an action URL carries (``lang=es``), when the business speaks it."""
    lang = request.query_params.get("lang")
    languages = _languages(services)
    return lang if lang and languages is not None and lang in languages else None


def business_of(services: Services) -> Any:
    """The business the handler answers for (its template context), or None for another handler."""
    return template_context(services).get("business")


def template_context(services: Services) -> dict[str, Any]:
    """What every template of the call is rendered with (the handler's context: the business)."""
    return dict(getattr(services.handler, "template_context", {}))


def text_for(services: Services, template: str, lang: str | None = None, **context: Any) -> str:
    """A reply template rendered for voice in ``lang`` (when the business speaks it), not yet finished for speech."""
    templates = services.templates.in_language(lang) if lang and _asked(services, lang) else services.templates
    return templates.render(template, Channel.VOICE.value, **{**template_context(services), **context})


def _asked(services: Services, lang: str) -> bool:
    languages = _languages(services)
    return languages is not None and lang in languages


def spoken(
    services: Services, template: str, lang: str | None = None, *, choices: tuple[Any, ...] = (), **context: Any
) -> str:
    """A template spoken in ``lang`` (default: the business's): ``.voice.j2`` variant first, finished for speech."""
    if choices and lang:
        titles = profile_for(lang).titles
        choices = tuple(replace(c, title=titles.get(c.payload, c.title)) for c in choices)
    return VOICE.prepare(Reply(text=text_for(services, template, lang, **context), choices=choices)).body


def listen(
    services: Services, request: Request, lines: list[str], lang: str | None = None, step: str = "turn", **params: Any
) -> str:
    """Say ``lines``, then listen: what the caller says goes to ``step`` (with ``params``); silence is
    re-prompted, then the call says goodbye, in ``lang``."""
    return call_script(services, lang).listen(lines, action=action_url(request, step, lang, **params),
                                              reprompt=spoken(services, "voice_reprompt", lang),
                                              goodbye=spoken(services, "voice_no_input", lang))


def listen_again(services: Services, request: Request, n: int, names: list[str], lang: str | None = None) -> Response:
    """Say the templates ``names``, then listen for turn ``n``."""
    return twiml_response(listen(services, request, [spoken(services, name, lang) for name in names], lang, n=n))


def twiml_response(body: str) -> Response:
    """TwiML as the HTTP answer."""
    return Response(body, media_type=TWIML_MEDIA_TYPE)
