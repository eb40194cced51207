"""The docs match the code: every option of the settings schema is documented in
docs/configuration.md and shown in config/example.yaml, and the docs name no option the
schema does not have."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from worker.config.schema import Settings

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "configuration.md"
EXAMPLE = ROOT / "config" / "example.yaml"


def _models(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _options(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        path = prefix + (field.alias or name)
        yield path
        for sub in _models(field.annotation):
            yield from _options(sub, path + ".")


OPTIONS = sorted(set(_options(Settings)))


def _documented() -> set[str]:
    """The options named in the first column of the reference's tables, and the sections
    that head them."""
    text = REFERENCE.read_text()
    rows = re.findall(r"^\| `([a-z_][a-z_.]*)` \|", text, re.MULTILINE)
    sections = re.findall(r"^## ([a-z_]+)$", text, re.MULTILINE)
    return set(rows) | set(sections)


def test_the_schema_has_options_to_check() -> None:
    assert {"timezone", "sync.max_events", "people.calendar.ics", "mail.smtp.host"} <= set(OPTIONS)


@pytest.mark.parametrize("option", OPTIONS)
def test_every_option_is_in_the_reference_and_the_example(option: str) -> None:
    assert option in _documented(), f"docs/configuration.md has no row for `{option}`"
    key = option.rsplit(".", 1)[-1]
    assert re.search(rf"(?<![\w-]){re.escape(key)}:", EXAMPLE.read_text()), (
        f"config/example.yaml does not show {key}: ({option})"
    )


def test_the_reference_names_no_option_the_schema_lacks() -> None:
    stale = _documented() - set(OPTIONS)
    assert not stale, f"docs/configuration.md documents options that do not exist: {stale}"
