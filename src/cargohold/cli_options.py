"""What every command that works on a data directory shares: its two options and
loading the settings (file, environment, overrides) with a clear error."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from cargohold import settings as settings_module
from cargohold.settings import Settings, SettingsError

config_option = click.option(
    "--config",
    "config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="CARGOHOLD_CONFIG",
    help="TOML configuration file.",
)
data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where metadata and blobs live (default ./cargohold-data).",
)


def load_settings(config: Path | None, overrides: dict[str, Any]) -> Settings:
    try:
        return settings_module.load(config, os.environ, overrides)
    except SettingsError as exc:
        raise click.UsageError(f"configuration: {exc}") from exc
