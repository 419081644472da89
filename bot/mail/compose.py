"""Staff emails rendered from ``prompts/email/``: a subject, plain text and HTML per kind.

Each kind has three templates: ``<kind>.subject.j2``, ``<kind>.txt.j2`` and
``<kind>.html.j2``. HTML is autoescaped (patient text is data, never markup);
the environment is sandboxed with ``StrictUndefined`` like the reply templates,
and every template is compiled at start-up, so a broken one stops start-up.

Patient data is masked before it reaches a template: the number keeps its
first and last digits, and phone numbers or email addresses written inside
the conversation's turns are replaced (:func:`mask_contacts`).

Example::

    composer = StaffMailComposer(Path("prompts"))
    message = composer.compose("handoff", event_id="handoff:SM1", to=("staff@clinic.example",),
                               business=business, patient=..., reason="asked", turns=[...], appointments=[])
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bot.errors import TemplateError
from bot.mail.message import EmailMessage

EMAIL_DIR: Final = "email"
#: Every kind of staff email; each needs its three templates.
KINDS: Final = ("handoff", "optout", "digest")
PARTS: Final = ("subject", "txt", "html")

_CONTACT = re.compile(
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # an email address
    r"|\+?\d[\d\s().-]{6,}\d"  # a phone-number-like run of 8+ digits and separators
)


def mask_contacts(text: str) -> str:
    """Hide phone numbers and email addresses written inside a message.

    >>> mask_contacts("call me at +1 (415) 555-0123 or jo@example.com, at 3pm")
    'call me at [number] or [email], at 3pm'
    """
    return _CONTACT.sub(lambda m: "[email]" if "@" in m.group() else "[number]", text)


class StaffMailComposer:
    """The staff email templates under ``root/email/``, compiled once."""

    def __init__(self, root: Path, *, kinds: Iterable[str] = KINDS) -> None:
        folder = root / EMAIL_DIR
        if not folder.is_dir():
            raise TemplateError(f"email template directory {folder} does not exist (set PROMPTS_DIR)")
        env = ImmutableSandboxedEnvironment(
            loader=jinja2.FileSystemLoader(folder),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self._templates: dict[tuple[str, str], jinja2.Template] = {}
        for kind in kinds:
            for part in PARTS:
                name = f"{kind}.{part}.j2"
                try:
                    self._templates[kind, part] = env.get_template(name)
                except jinja2.TemplateNotFound:
                    raise TemplateError(f"missing email template {folder / name}") from None
                except jinja2.TemplateSyntaxError as exc:
                    raise TemplateError(f"{folder / name}:{exc.lineno}: {exc.message}") from None

    def render(self, kind: str, part: str, **context: Any) -> str:
        """One part (``subject``, ``txt`` or ``html``) of a kind's email."""
        try:
            return self._templates[kind, part].render(**context).strip()
        except KeyError:
            raise TemplateError(f"no email template {kind}.{part}.j2") from None
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"email template {kind}.{part}.j2: {exc.message}") from None

    def compose(self, kind: str, *, event_id: str, to: tuple[str, ...], **context: Any) -> EmailMessage:
        """The email of one event: subject on one line, text and HTML from the same context."""
        subject = " ".join(self.render(kind, "subject", **context).split())
        return EmailMessage(
            event_id=event_id,
            to=to,
            subject=subject,
            text=self.render(kind, "txt", **context) + "\n",
            html=self.render(kind, "html", **context),
        )
