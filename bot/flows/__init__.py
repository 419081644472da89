"""Flows: multi-turn conversations as tables, run by one interpreter.

- :mod:`bot.flows.table`: :class:`~bot.flows.table.FlowTable` (slots, prompts,
  readers, offers, checks, confirmation) and :class:`~bot.flows.table.TableFlow`.
- :mod:`bot.flows.appointments`: the booking, rescheduling and cancelling tables.
- :mod:`bot.flows.when`: the date and time rows they share.
- :mod:`bot.flows.options`: offered options, remembered and picked.
- :mod:`bot.flows.base`: the per-turn view (:class:`~bot.flows.base.Turn`) and the protocol.

The hand-off table lives in :mod:`bot.handoff`. Tables are registered
explicitly in :func:`bot.brain.build_handler`.
"""
