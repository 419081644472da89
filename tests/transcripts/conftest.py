"""Every conversation in tests/transcripts/**/*.yaml is a test (devtools/replay/pytest_plugin.py).

pytest refuses ``pytest_plugins`` in a conftest below the root, so the
plugin's collection hook is imported here; it applies to this folder only.
"""

from devtools.replay.pytest_plugin import pytest_collect_file

__all__ = ["pytest_collect_file"]
