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

from bot.messages import Choice
from bot.outbound.templates import ContentTemplates
from devtools.simulator.state import Simulator
from devtools.simulator.templates import ContentTemplate


def simulator_templates(registry: ContentTemplates) -> list[ContentTemplate]:
    """The simulator's form of every registry entry."""
    return [
        ContentTemplate(
            sid=spec.content_sid,
            name=spec.name,
            body=spec.body,
            buttons=(*(Choice(button.id, button.title) for button in spec.buttons),
                     *(Choice(item.id, item.item) for item in spec.items)),
            content_type=spec.type,
            list_button=spec.list_button,
        )
        for spec in registry
    ]


def register_content_templates(sim: Simulator, registry: ContentTemplates) -> None:
    """Make every template of ``registry`` a known ContentSid of ``sim``."""
    for template in simulator_templates(registry):
        sim.register_template(template)
