"""Reading the YAML data files under ``intents/`` strictly: a mapping at the top, no duplicate keys.

Every data file (``business.yaml``, ``intents.yaml``, ``templates.yaml``,
``safety.yaml`` ...) is read with :func:`read_yaml_mapping`, and pydantic's
errors about it become one :class:`~bot.errors.ConfigError` naming the file
and each field (:func:`validation_problems`).

Example::

    data = read_yaml_mapping(Path("intents/business.yaml"))
    try:
        business = Business.model_validate(data)
    except ValidationError as exc:
        raise validation_problems(path, exc) from None
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bot.errors import ConfigError


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys.

    Why: PyYAML silently keeps the last of two equal keys, so a copy-pasted
    intent or service would quietly replace the first one.
    """


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return dict(loader.construct_mapping(node))


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file whose top level is a mapping; refuse duplicate keys.

    Raises :class:`ConfigError` naming the file (and line, for syntax errors).

    Example::

        data = read_yaml_mapping(Path("intents/business.yaml"))
        data["name"]  # "Bright Smile Dental"
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    return data


def validation_problems(path: Path, exc: ValidationError) -> ConfigError:
    """Turn pydantic's error into one :class:`ConfigError` naming file and fields.

    Example message::

        intents/business.yaml: invalid data:
          services.cleaning.price: Input should be greater than or equal to 0
    """
    problems = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "(top level)"
        if err["type"] == "missing":
            reason = "missing"
        elif err["type"] == "extra_forbidden":
            reason = "unknown key (not allowed here; check the spelling)"
        else:
            reason = err["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {reason}")
    return ConfigError(f"{path}: invalid data:\n  " + "\n  ".join(problems))
