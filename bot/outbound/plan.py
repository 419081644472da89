"""What one send puts in Twilio's create call: text, a content template or buttons, and what to try instead.

The sender (:mod:`bot.outbound.sender`) asks :func:`plan_send` for a
:class:`SendPlan`: SMS gets text (a template's ``sms_fallback``); WhatsApp gets
free-form text, quick-reply buttons (up to three choices) or a list picker
(four to ten) inside the 24 h window, and only content templates outside it.
A plan carries what to send if Twilio refuses it: the fallback template when
Twilio still sees the window closed (63016), the numbered text when it refuses
the buttons' template.

Example::

    plan = await plan_send(SendRequest(key=wa_key, body="Book it?", choices=choices, idempotency_key="k"),
                           templates=templates, window=WhatsAppWindow(store, clock), service_sid=None)
    plan.params(status_callback=None)   # {"to": "whatsapp:+1...", "content_sid": "HX...", ...}
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from bot.channels import ChannelProfile, profile_of
from bot.errors import ChannelSendError, TemplateError
from bot.messages import Reply, TemplateMessage
from bot.outbound.errors import OutsideWindowError
from bot.outbound.models import SendRequest
from bot.outbound.templates import LIST_ITEM_MAX, QUICK_REPLY_MAX, ContentTemplates
from bot.outbound.window import WhatsAppWindow
from bot.sms.segments import SegmentCount


@dataclass(frozen=True, slots=True)
class SendPlan:
    """Exactly what one create call sends."""

    to: str
    from_: str | None
    service_sid: str | None
    body: str | None = None
    media: tuple[str, ...] = ()
    content_sid: str | None = None
    content_variables: str | None = None
    template: str | None = None
    window_fallback: bool = False
    segments: SegmentCount | None = None
    # A synchronous 63016 means Twilio sees the window closed: send this instead.
    on_window_error: SendPlan | None = None
    # Buttons are an extra: if Twilio refuses their template, send the text.
    on_content_error: SendPlan | None = None

    def params(self, status_callback: str | None) -> dict[str, Any]:
        """The keywords of ``client.messages.create_async``."""
        params: dict[str, Any] = {"to": self.to}
        if self.from_:
            params["from_"] = self.from_
        if self.service_sid:
            params["messaging_service_sid"] = self.service_sid
        if self.content_sid:
            params["content_sid"] = self.content_sid
            if self.content_variables:
                params["content_variables"] = self.content_variables
        else:
            if self.body:
                params["body"] = self.body
            if self.media:
                params["media_url"] = list(self.media[:10])
        if status_callback:
            params["status_callback"] = status_callback
        return params


async def plan_send(
    request: SendRequest, *, templates: ContentTemplates, window: WhatsAppWindow, service_sid: str | None
) -> SendPlan:
    """What to send for ``request``: text, a content template or buttons, each with what to try instead.

    Raises :class:`~bot.outbound.errors.OutsideWindowError` when WhatsApp's window is closed and the
    request has no fallback template.
    """
    key = request.key
    service = service_sid
    if not key.bot and not service:
        raise ChannelSendError("no sender: the key has no bot number and no Messaging Service is set")
    base = SendPlan(to=key.channel.address(key.user), from_=key.channel.address(key.bot) if key.bot else None,
                 service_sid=service)
    profile = profile_of(key.channel)
    if request.template is not None:
        return template_plan(base, request.template, profile, templates, media=request.media)
    if profile.session_window is None and not profile.buttons:
        return text_plan(base, request)

    fallback = None
    if request.fallback_template is not None:
        fallback = replace(template_plan(base, request.fallback_template, profile, templates),
                           window_fallback=True)
    if profile.session_window is not None and not await window.is_open(
        key, last_inbound_at=request.last_inbound_at
    ):
        if fallback is None:
            raise OutsideWindowError()
        return fallback
    text = text_plan(base, request)
    buttons = quick_reply_plan(base, request, profile, templates)
    plan = replace(buttons, on_content_error=text) if buttons is not None else text
    return replace(plan, on_window_error=fallback)

def template_plan(
    base: SendPlan, template: TemplateMessage, profile: ChannelProfile, templates: ContentTemplates, *,
    media: tuple[str, ...] = (),
) -> SendPlan:
    """A content template; on a channel without them (SMS) the registry's text fallback."""
    if not profile.content_templates:
        # No content templates on SMS: the registry's text fallback.
        text = templates.render_sms(template.name, template.variables, template.language)
        out = profile.prepare(Reply(text=text, media=media))
        return replace(base, body=out.body, media=out.media, template=template.name, segments=out.segments)
    spec = templates.get(template.name, template.language)
    return replace(base, content_sid=spec.content_sid, template=template.name,
                   content_variables=templates.content_variables(template.name, template.variables,
                                                                 template.language))

def text_plan(base: SendPlan, request: SendRequest) -> SendPlan:
    """Free-form text (choices as numbered lines), finished for the channel."""
    out = profile_of(request.key.channel).prepare(Reply(text=request.body, media=request.media,
                                                        choices=request.choices))
    return replace(base, body=out.body, media=out.media, segments=out.segments)

def quick_reply_plan(
    base: SendPlan, request: SendRequest, profile: ChannelProfile, templates: ContentTemplates
) -> SendPlan | None:
    """Choices as WhatsApp buttons: a quick-reply content template for up to three, a list
    picker for more (WhatsApp allows three quick replies), when they fit."""
    choices = request.choices
    if len(choices) <= QUICK_REPLY_MAX:
        name, limit = f"quick_reply_{len(choices)}", profile.button_title_max
    else:
        name, limit = f"list_picker_{len(choices)}", LIST_ITEM_MAX
    if not profile.buttons or request.media or not request.body.strip() or name not in templates:
        return None
    if limit is not None and any(len(c.title.strip()) > limit for c in choices):
        return None  # WhatsApp would refuse; numbered lines still work
    values = {"body": request.body.strip()}
    for number, choice in enumerate(choices, 1):
        values[f"title_{number}"] = choice.title
        values[f"payload_{number}"] = choice.payload
    try:
        variables = templates.content_variables(name, values)
    except TemplateError:
        return None  # too long for a template: plain text carries it
    return replace(base, content_sid=templates.get(name).content_sid, content_variables=variables,
                   template=name)
