"""Flows: multi-turn conversations (booking, rescheduling, cancelling).

Registered explicitly in :func:`bot.brain.build_handler`; see
:mod:`bot.flows.base` for the protocol.
"""
