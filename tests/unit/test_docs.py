"""docs/configuration.md documents every setting there is, and nothing that is not."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from cargohold import settings

DOC = Path(__file__).parents[2] / "docs" / "configuration.md"


def _documented() -> set[str]:
    section = ""
    keys: set[str] = set()
    for line in DOC.read_text().splitlines():
        heading = re.match(r"^## `\[(\w+)\]`", line)
        if heading:
            section = heading.group(1)
        elif line.startswith("## Top level"):
            section = ""
        elif line.startswith("## "):
            section = "-"
        row = re.match(r"^\| `(\w+)` \|", line)
        if row and section != "-":
            keys.add(f"{section}.{row.group(1)}" if section else row.group(1))
    return keys


def _settings() -> set[str]:
    keys = {"data_dir"}
    for name, cls in settings._SECTIONS.items():
        keys |= {f"{name}.{f.name}" for f in dataclasses.fields(cls)}
    # [storage] is a tagged union: every backend's keys.
    for backend in settings._STORAGE_BACKENDS.values():
        keys |= {f"storage.{f.name}" for f in dataclasses.fields(backend)}
    return keys


def test_every_setting_is_documented() -> None:
    assert _settings() - _documented() == set()


def test_nothing_documented_that_does_not_exist() -> None:
    assert _documented() - _settings() == set()
