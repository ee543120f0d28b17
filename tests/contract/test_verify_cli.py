"""``cargohold verify REF`` on a data directory, on every database: the exit status
says whether the registry's signatures verify with the keys given."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import click
import pytest
from click.testing import CliRunner

from cargohold.api.app import open_services
from cargohold.cli import main
from cargohold.cli_verify import ImageRef, parse_ref
from cargohold.registry.signing.cosign import CosignFormat
from cargohold.registry.signing.formats import SigningTarget
from cargohold.settings import DatabaseSettings, ServerSettings, Settings
from tests.signing_keys import MemoryKeyStore, public_pem

from .conftest import _migrated
from .test_cosign import HOST, push_image

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("acme/app", ImageRef("acme/app", "latest")),
        ("acme/app:v1", ImageRef("acme/app", "v1")),
        (f"{HOST}/acme/app:v1", ImageRef("acme/app", "v1")),
        ("acme/app@sha256:" + "a" * 64, ImageRef("acme/app", "sha256:" + "a" * 64)),
        ("localhost:5000/acme/app", None),
        ("other.example/acme/app", None),
        ("Acme/App", None),
    ],
)
def test_parse_ref(text: str, expected: ImageRef | None) -> None:
    if expected is None:
        with pytest.raises(click.BadParameter):
            parse_ref(text, HOST)
    else:
        assert parse_ref(text, HOST) == expected


async def _signed_image(settings: Settings, keys: MemoryKeyStore) -> str:
    services = open_services(settings)
    try:
        digest = await push_image(services, "a")
        unsigned = await push_image(services, "b", tag="unsigned")
        cosign = CosignFormat(services.attacher, services.attachments)
        target = SigningTarget("acme/app", digest, "x", f"{HOST}/acme/app")
        await cosign.sign(target, keys)
    finally:
        await services.close()
    return unsigned


def test_verify_cli(database_url: str, tmp_path: Path) -> None:
    asyncio.run(_migrated(database_url).close())
    data = tmp_path / "data"
    data.mkdir()
    config = tmp_path / "cargohold.toml"
    config.write_text(
        f'data_dir = "{data}"\n[server]\npublic_url = "https://{HOST}"\n'
        f'[database]\nurl = "{database_url}"\n'
    )
    settings = Settings(
        data_dir=data,
        database=DatabaseSettings(url=database_url),
        server=ServerSettings(public_url=f"https://{HOST}"),
    )
    keys = MemoryKeyStore()
    asyncio.run(_signed_image(settings, keys))
    key = tmp_path / "cosign.pub"
    key.write_text(public_pem(keys.active))
    other = tmp_path / "other.pub"
    other.write_text(public_pem(MemoryKeyStore().active))
    runner = CliRunner()

    def verify(*args: str) -> tuple[int, str]:
        done = runner.invoke(main, ["verify", "--config", str(config), *args])
        return done.exit_code, done.output

    code, output = verify("--key", str(key), f"{HOST}/acme/app:v1")
    assert code == 0, output
    assert output.splitlines()[-1] == "verified"
    code, output = verify("--key", str(key), "--json", "acme/app:v1")
    answer = json.loads(output)
    assert (code, answer["verified"], answer["failures"]) == (0, True, [])
    assert [s["format"] for s in answer["signatures"]] == ["cosign", "sigstore-bundle"]
    # Another key: nothing the registry made verifies.
    code, output = verify("--key", str(other), "acme/app:v1")
    assert code == 1, output
    assert output.splitlines()[-1] == "NOT verified"
    # Retired keys still count: the old key given beside a new one.
    code, output = verify("--key", str(other), "--key", str(key), "acme/app:v1")
    assert code == 0, output
    # Unsigned, unknown, or a key that is no key.
    assert verify("--key", str(key), "acme/app:unsigned")[0] == 1
    code, output = verify("--key", str(key), "acme/app:nope")
    assert code == 1
    assert "manifest unknown" in output or "nope" in output
    code, output = verify("--key", str(config), "acme/app:v1")
    assert code == 2
    assert "not a PEM public key" in output
    # No --key and no signing keys in this process's services.
    code, output = verify("acme/app:v1")
    assert code == 2
    assert "pass --key" in output
