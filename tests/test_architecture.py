"""``docs/architecture.md`` lists every module of ``bot/``, ``webhooks/`` and ``devtools/``, and nothing that is gone.

A module is named as its path in backticks (`` `bot/engine.py` ``); a package
by its folder (`` `bot/nlu/` ``). Add one line when you add a module, with what
it is; the import rules are enforced by ``tests/test_layers.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
PACKAGES = ("bot", "webhooks", "devtools")


def module_names() -> set[str]:
    """Every module as the doc names it: ``bot/engine.py``, or ``bot/nlu/`` for a package."""
    names = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT)
            names.add(relative.parent.as_posix() + "/" if path.name == "__init__.py" else relative.as_posix())
    return names


def listed_names() -> set[str]:
    """The module lines of the doc's Modules section: ``- `path` what it is``."""
    return set(re.findall(r"^- `((?:bot|webhooks|devtools)/[^`]*)` \S", DOC.read_text(encoding="utf-8"), re.MULTILINE))


def test_every_module_has_a_line_in_the_architecture_doc() -> None:
    missing = sorted(module_names() - listed_names())
    assert not missing, (
        "docs/architecture.md (## Modules) has no line for: " + ", ".join(missing)
        + ' - add "- `path` what it is" under its package'
    )


def test_the_architecture_doc_lists_no_module_that_is_gone() -> None:
    stale = sorted(listed_names() - module_names())
    assert not stale, "docs/architecture.md lists modules that do not exist: " + ", ".join(stale)


def test_the_doc_shows_the_import_rules_the_layer_test_enforces() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "## Import rules" in text
    assert "`bot/` and `webhooks/` never import `devtools/`" in text
