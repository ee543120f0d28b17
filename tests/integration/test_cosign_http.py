"""The registry's cosign signatures over HTTP, as clients fetch them.

Through the whole app: the ``.sig`` tag and the bundle referrer are served to whoever
may pull the image, and to nobody else; the payload fetched over ``/v2`` verifies with
``openssl dgst -sha256 -verify`` and the registry's public key.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import httpx
import pytest

from cargohold.registry.signing.cosign import BUNDLE, SIGNATURE_ANNOTATION, sig_tag
from cargohold.registry.signing.formats import SigningTarget
from tests.integration.authhelpers import ADMIN, ROOT, as_user, services_of
from tests.integration.helpers import OCI_MANIFEST, assert_error, push_image
from tests.signing_keys import MemoryKeyStore, openssl_verifies, public_pem

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio
REPO = "acme/python"


async def _signed(client: httpx.AsyncClient, keys: MemoryKeyStore) -> dict[str, str]:
    """acme/python, public: ``latest`` (a starter tag) and ``3.12.1``, both signed."""
    client.headers.update(await as_user(client, REPO, "pull,push", auth=ADMIN))
    latest, _ = await push_image(client, REPO, "latest", seed="l")
    version, _ = await push_image(client, REPO, "3.12.1", seed="v")
    client.headers.pop("Authorization")
    services = services_of(client)
    await services.auth.admin.create_organization(ROOT, "acme", client="t")
    await services.auth.admin.set_repository(
        ROOT, REPO, visibility="public", starter_tags=None, client="t"
    )
    for digest in (latest, version):
        target = SigningTarget(REPO, digest, OCI_MANIFEST, f"test.example/{REPO}")
        await services.cosign.sign(target, keys)
    return {"latest": latest, "version": version}


async def test_anonymous_callers_get_the_signatures_of_what_they_may_pull(
    auth_client: httpx.AsyncClient, tmp_path: Path
) -> None:
    keys = MemoryKeyStore()
    images = await _signed(auth_client, keys)
    anonymous = await as_user(auth_client, REPO)
    base = f"/v2/{REPO}"

    sig = await auth_client.get(
        f"{base}/manifests/{sig_tag(images['latest'])}",
        headers={**anonymous, "Accept": OCI_MANIFEST},
    )
    assert sig.status_code == 200, sig.text
    [layer] = sig.json()["layers"]
    payload = await auth_client.get(
        f"{base}/blobs/{layer['digest']}", headers=anonymous
    )
    assert payload.status_code == 200
    (tmp_path / "payload.json").write_bytes(payload.content)
    (tmp_path / "payload.sig").write_bytes(
        base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION])
    )
    (tmp_path / "cosign.pub").write_text(public_pem(keys.active))
    assert openssl_verifies(
        tmp_path / "cosign.pub", tmp_path / "payload.json", tmp_path / "payload.sig"
    )

    referrers = await auth_client.get(
        f"{base}/referrers/{images['latest']}", headers=anonymous
    )
    assert [m["artifactType"] for m in referrers.json()["manifests"]] == [BUNDLE]

    tags = await auth_client.get(f"{base}/tags/list", headers=anonymous)
    assert tags.json()["tags"] == ["latest", sig_tag(images["latest"])]

    # The version is not a starter tag: neither it nor its signatures.
    hidden = await auth_client.get(
        f"{base}/manifests/{sig_tag(images['version'])}", headers=anonymous
    )
    assert_error(hidden, 401, "UNAUTHORIZED")
    hidden = await auth_client.get(
        f"{base}/referrers/{images['version']}", headers=anonymous
    )
    assert_error(hidden, 401, "UNAUTHORIZED")
