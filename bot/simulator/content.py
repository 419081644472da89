"""The project's content-template registry, known to the simulator.

``intents/templates.yaml`` is the one source: the simulator renders the
same ContentSids with the same approved text and buttons the bot registers,
so what the dev phone shows is what WhatsApp users would read.

Example::

    registry = ContentTemplates.load(Path("intents/templates.yaml"))
    register_content_templates(sim, registry)
    sim.templates[registry.get("welcome_back").content_sid].name  # "welcome_back"
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.messages import Choice
from bot.outbound.templates import ContentTemplates
from bot.simulator.state import ContentTemplate, Simulator

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


@dataclass(frozen=True, slots=True)
class RegistryTemplate(ContentTemplate):
    """A template whose buttons may use variables too (generic quick replies).

    The simulator checks the variables sent against :attr:`placeholders`;
    Twilio counts those of the buttons as well.
    """

    @property
    def placeholders(self) -> frozenset[str]:
        texts = [self.body, *(b.title for b in self.buttons), *(b.payload for b in self.buttons)]
        return frozenset(name for text in texts for name in _PLACEHOLDER.findall(text))


def simulator_templates(registry: ContentTemplates) -> list[ContentTemplate]:
    """The simulator's form of every registry entry."""
    return [
        RegistryTemplate(
            sid=spec.content_sid,
            name=spec.name,
            body=spec.body,
            buttons=tuple(Choice(button.id, button.title) for button in spec.buttons),
            content_type=spec.type,
        )
        for spec in registry
    ]


def register_content_templates(sim: Simulator, registry: ContentTemplates) -> None:
    """Make every template of ``registry`` a known ContentSid of ``sim``."""
    for template in simulator_templates(registry):
        sim.register_template(template)
