"""The one loader of pattern files: a bad regex or key is a start-up error naming file, field and pattern."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, field_validator

from bot.errors import ConfigError
from bot.nlu.patterns import check_patterns, load_pattern_file


class _Words(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    confirm: list[str]
    rules: dict[str, str] = {}

    _check = field_validator("confirm", "rules")(classmethod(lambda cls, v: check_patterns(v)))


def test_good_patterns_pass_unchanged() -> None:
    patterns = ["^c$", "^(yes|ok)$"]
    assert check_patterns(patterns) is patterns
    assert check_patterns({"bleeding": "sangr"}) == {"bleeding": "sangr"}


def test_a_file_loads_as_its_model(tmp_path: Path) -> None:
    path = tmp_path / "words.yaml"
    path.write_text("confirm: ['^y$']\nrules: {ok: '^ok$'}\n")
    assert load_pattern_file(path, _Words) == _Words(confirm=["^y$"], rules={"ok": "^ok$"})


@pytest.mark.parametrize(("text", "said"), [
    ("confirm: ['^(y']\n", "confirm: invalid regex '^(y': missing )"),
    ("confirm: ['^y$']\nrules: {bleeding: '[a-'}\n", "rules: rule 'bleeding': invalid regex '[a-'"),
    ("confirmm: ['^y$']\n", "confirmm: unknown key"),
    ("- just a list\n", "the top level must be a mapping"),
])
def test_a_bad_file_names_file_field_and_pattern(tmp_path: Path, text: str, said: str) -> None:
    path = tmp_path / "words.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_pattern_file(path, _Words)
    assert str(caught.value).startswith(f"{path}:")
    assert said in str(caught.value)
