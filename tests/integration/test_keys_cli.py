"""``cargohold keys list|rotate`` on a data directory."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cargohold.cli import main


def _keys(runner: CliRunner, data: Path) -> list[str]:
    result = runner.invoke(main, ["keys", "list", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_rotation_publishes_first_and_signs_later(tmp_path: Path) -> None:
    runner = CliRunner()
    data = tmp_path / "data"
    (first,) = _keys(runner, data)  # the first key is made on first use
    assert first.startswith("* ")
    rotated = runner.invoke(main, ["keys", "rotate", "--data-dir", str(data)])
    assert rotated.exit_code == 0, rotated.output
    new_kid = rotated.stdout.split("added signing key ", 1)[1].split(";", 1)[0]
    listed = _keys(runner, data)
    assert len(listed) == 2
    # Published at once, but the old key keeps signing until every process knows it.
    assert listed[0] == first
    assert any(line == f"  {new_kid} ES256" for line in listed)
