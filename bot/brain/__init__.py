"""The Brain: from an understood message to replies, across turns.

- :mod:`bot.brain.dispatch`: the :class:`Brain` and its turn pipeline
  (safety, hand-off, the flow's answer, rules and classifier, the model,
  then the intent's handler or flow);
- :mod:`bot.brain.build`: :func:`build_handler`, the default Brain built from
  ``Settings``, in each of the business's languages.

Example::

    brain = build_handler(settings, templates=templates, clock=clock, store=store)
    result = await brain.handle(ctx)
"""

from __future__ import annotations

from bot.brain.build import build_handler
from bot.brain.dispatch import Brain
from bot.handlers import directions_url, media_kind
from bot.handoff import StaffNotifier, outbox_staff_notifier

__all__ = ["Brain", "StaffNotifier", "build_handler", "directions_url", "media_kind", "outbox_staff_notifier"]
