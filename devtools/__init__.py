"""Development tools, never loaded by ``bot serve`` or ``bot worker``: simulator, dev phone, replay, chat.

Production code (``bot/``, ``webhooks/``) does not import this package; ``bot/cli.py`` reaches it lazily
inside the dev commands (``tests/test_layers.py``).
"""
