"""Registry signing in the app: the ``sign`` job, the signature API extension under
token auth and the tiers, the public keys, rotation and ``resign``."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from cargohold.registry.outbox import DeliveryFailed, OutboxItem
from cargohold.registry.signing.file_keys import FileKeyStore, ecdsa_key_id
from cargohold.registry.signing.keys import ECDSA_P256, OPENPGP
from tests.apptypes import MakeClient
from tests.integration.authhelpers import ADMIN, as_user, services_of
from tests.integration.helpers import assert_error, digest_of, push_image
from tests.integration.test_tiers import _make_public, _publish

pytestmark = pytest.mark.anyio

SIGNING = {"enabled": True}


async def _drain(client: httpx.AsyncClient) -> None:
    await services_of(client).outbox.drain(until=time.time() + 60)


def _entry(digest: str, content: bytes) -> dict[str, object]:
    return {
        "schemaVersion": 2,
        "name": f"{digest}@{'1' * 32}",
        "type": "atomic",
        "content": base64.b64encode(content).decode(),
    }


async def test_a_push_is_signed_once_by_the_queued_job(
    make_client: MakeClient,
) -> None:
    client = await make_client(signing=SIGNING)
    digest, _ = await push_image(client, "acme/app", "v1")
    await _drain(client)
    listed = (await client.get(f"/extensions/v2/acme/app/signatures/{digest}")).json()
    assert len(listed["signatures"]) == 1
    entry = listed["signatures"][0]
    assert (entry["schemaVersion"], entry["type"]) == (2, "atomic")
    # Running the job again (a lease that ran out) stores nothing new.
    assert await services_of(client).signing.sign("acme/app", digest) == 1
    again = (await client.get(f"/extensions/v2/acme/app/signatures/{digest}")).json()
    assert again == listed
    reports = await services_of(client).signing.verify("acme/app", digest)
    # One signature per format, each once, all the registry's.
    assert [(r.format, r.verified, r.signer) for r in reports] == [
        ("simple-signing", True, "registry"),
        ("cosign", True, "registry"),
        ("sigstore-bundle", True, "registry"),
    ]
    keys = services_of(client).signing.keys
    assert reports[0].key_id == keys.openpgp_fingerprint()
    assert reports[1].key_id == reports[2].key_id == keys.ecdsa().key_id


async def test_signing_off_queues_nothing_and_publishes_no_keys(
    client: httpx.AsyncClient,
) -> None:
    digest, _ = await push_image(client, "acme/app", "v1")
    await _drain(client)
    listed = await client.get(f"/extensions/v2/acme/app/signatures/{digest}")
    assert listed.json() == {"signatures": []}
    for path in ("cosign.pub", "signing-key.asc", "keys.json"):
        answer = await client.get(f"/.well-known/cargohold/{path}")
        assert_error(answer, 404, "NOT_FOUND")


async def test_public_keys_are_published(make_client: MakeClient) -> None:
    client = await make_client(signing=SIGNING)
    keys = services_of(client).signing.keys
    pem = await client.get("/.well-known/cargohold/cosign.pub")
    assert pem.status_code == 200
    public = serialization.load_pem_public_key(pem.content)
    assert ecdsa_key_id(public) == keys.ecdsa().key_id  # type: ignore[arg-type]
    asc = await client.get("/.well-known/cargohold/signing-key.asc")
    assert asc.text.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    listed = (await client.get("/.well-known/cargohold/keys.json")).json()["keys"]
    assert sorted((k["kind"], k["state"]) for k in listed) == [
        (ECDSA_P256, "active"),
        (OPENPGP, "active"),
    ]


async def test_signatures_follow_the_tiers(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "token"}, signing=SIGNING)
    from cargohold.registry.bootstrap import bootstrap
    from cargohold.settings import AdminSettings

    await bootstrap(
        services_of(client), AdminSettings(user=ADMIN[0], password=ADMIN[1])
    )
    d = await _publish(client)
    await _drain(client)
    base = "/extensions/v2/acme/python/signatures"
    anonymous = await as_user(client, "acme/python")
    # Private: nothing for an anonymous caller.
    assert_error(
        await client.get(f"{base}/{d['index']}", headers=anonymous),
        401,
        "UNAUTHORIZED",
    )
    await _make_public(client)
    anonymous = await as_user(client, "acme/python")
    # A starter tag's manifest (and the index's child): its signatures are readable.
    for digest in (d["index"], d["child"]):
        answer = await client.get(f"{base}/{digest}", headers=anonymous)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["signatures"]) == 1
    # A version tag is for the entitled only, and so are its signatures.
    refused = await client.get(f"{base}/{d['version']}", headers=anonymous)
    assert_error(refused, 401, "UNAUTHORIZED")
    admin = await as_user(client, "acme/python", "pull", auth=ADMIN)
    answer = await client.get(f"{base}/{d['version']}", headers=admin)
    assert len(answer.json()["signatures"]) == 1
    # Storing one takes push rights.
    body = _entry(d["version"], b"\x90client signature")
    assert_error(
        await client.put(f"{base}/{d['version']}", json=body, headers=admin),
        401,
        "UNAUTHORIZED",
    )
    pusher = await as_user(client, "acme/python", "pull,push", auth=ADMIN)
    for _ in range(2):  # the same signature twice is stored once
        stored = await client.put(f"{base}/{d['version']}", json=body, headers=pusher)
        assert stored.status_code == 201, stored.text
    answer = await client.get(f"{base}/{d['version']}", headers=admin)
    assert len(answer.json()["signatures"]) == 2
    reports = await services_of(client).signing.verify("acme/python", d["version"])
    assert sorted((r.format, r.signer, r.verified) for r in reports) == [
        ("cosign", "registry", True),
        ("sigstore-bundle", "registry", True),
        ("simple-signing", "registry", True),
        ("simple-signing", "user:root", False),
    ]


async def test_bad_signature_requests_get_clear_errors(
    make_client: MakeClient,
) -> None:
    client = await make_client(signing=SIGNING)
    digest, _ = await push_image(client, "acme/app", "v1")
    base = "/extensions/v2/acme/app/signatures"
    bad = await client.put(f"{base}/{digest}", content=b"{not json")
    assert_error(bad, 400, "SIGNATURE_INVALID")
    wrong = await client.put(
        f"{base}/{digest}", json=_entry(digest_of(b"other"), b"\x90sig")
    )
    assert_error(wrong, 400, "SIGNATURE_INVALID")
    huge = await client.put(f"{base}/{digest}", content=b" " * (300 * 1024))
    assert_error(huge, 400, "SIGNATURE_INVALID")
    missing = digest_of(b"never pushed")
    unknown = await client.put(f"{base}/{missing}", json=_entry(missing, b"\x90s"))
    assert_error(unknown, 404, "MANIFEST_UNKNOWN")
    assert_error(await client.get(f"{base}/{missing}"), 404, "MANIFEST_UNKNOWN")
    assert_error(await client.get(f"{base}/sha256:nothex"), 400, "DIGEST_INVALID")
    assert_error(
        await client.get(f"/extensions/v2/Bad..Name/signatures/{digest}"),
        400,
        "NAME_INVALID",
    )


async def test_rotation_then_resign_signs_each_image_again(
    make_client: MakeClient,
) -> None:
    client = await make_client(signing=SIGNING)
    signing = services_of(client).signing
    image, _ = await push_image(client, "acme/app", "v1", seed="a")
    other, _ = await push_image(client, "acme/app", "v2", seed="b")
    await _drain(client)
    keys = signing.keys
    assert isinstance(keys, FileKeyStore)
    old, old_ecdsa = keys.openpgp_fingerprint(), keys.ecdsa().key_id
    keys.generate(rotate=True)
    assert await signing.resign("acme/app") == 2
    assert await signing.resign("acme/app") == 0  # queued once per key
    await _drain(client)
    for digest in (image, other):
        reports = await signing.verify("acme/app", digest)
        new, new_ecdsa = keys.openpgp_fingerprint(), keys.ecdsa().key_id
        assert sorted((r.format, r.key_id or "") for r in reports) == sorted(
            [
                *[("simple-signing", key) for key in (old, new)],
                *[("cosign", key) for key in (old_ecdsa, new_ecdsa)],
                *[("sigstore-bundle", key) for key in (old_ecdsa, new_ecdsa)],
            ]
        )
        assert all(r.verified for r in reports)  # the retired key's still verify
    published = json.loads((await client.get("/.well-known/cargohold/keys.json")).text)[
        "keys"
    ]
    assert sorted(k["state"] for k in published) == [
        "active",
        "active",
        "retired",
        "retired",
    ]
    status = await signing.status()
    assert status.queue == {"done": 4}


async def test_a_sign_job_that_cannot_run_fails_clearly(
    make_client: MakeClient,
) -> None:
    client = await make_client(signing=SIGNING)
    signing = services_of(client).signing
    digest, _ = await push_image(client, "acme/app", "v1")
    with pytest.raises(DeliveryFailed) as malformed:
        await signing.sign_job(OutboxItem(1, "sign:x", "sign", {"digest": digest}, 0))
    assert malformed.value.permanent
    keys = signing.keys
    assert isinstance(keys, FileKeyStore)
    (keys.root / "keys.json").unlink()  # the keys are gone: retried, not dead
    job = OutboxItem(
        2, "sign:y", "sign", {"repository": "acme/app", "digest": digest}, 0
    )
    with pytest.raises(DeliveryFailed, match="no active") as missing:
        await signing.sign_job(job)
    assert not missing.value.permanent
    # A manifest deleted before its job ran: nothing to sign, the job is done.
    assert await signing.sign("acme/app", digest_of(b"deleted")) == 0
