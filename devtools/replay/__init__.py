"""Transcript replay: YAML conversations as tests.

A transcript (``docs/transcripts.md``) says what a texter sends and what the
bot must do at each step. This package is split by concern:

- :mod:`devtools.replay.transcript` parses and validates the format into frozen
  dataclasses (every error names the file and line);
- :mod:`devtools.replay.expect` checks one step's expectations against what the bot
  sent, and formats a failure a user can act on without reading our code.

The runner (``bot replay``) and the pytest plugin build on these two.

Example::

    from devtools.replay.expect import StepOutcome, SentMessage, check
    from devtools.replay.transcript import load_transcripts

    for transcript in load_transcripts([Path("tests/transcripts")]):
        for step in transcript.turns:
            outcome = StepOutcome(sent=(SentMessage("+14155550123", "Hi!"),))
            if step.expect is not None:
                failures = check(step.expect, outcome, user=transcript.user)
"""
