"""Issue #8 end to end, with what nobody here wrote: an image built from this
machine's dpkg status, pushed by stock skopeo to a registry with signing and SBOMs
on (two workers, token auth); the queued jobs sign, describe, attest and match it.

Then, through the metadata API and checked with other people's tools:

* the packages are what ``dpkg-query -W`` lists;
* every signature format verifies, and the ``.sig`` payload verifies with
  ``openssl`` against the published ``cosign.pub``;
* the ``.att`` tag's DSSE envelopes verify with ``securesystemslib`` against the
  same key: SLSA provenance naming the pusher, an SPDX 2.3 SBOM that ``spdx-tools``
  validates, and a CycloneDX 1.6 SBOM;
* an OSV feed imported with the CLI marks the image vulnerable, with the fix;
* ``cargohold verify`` agrees;
* anonymous callers read the metadata of the public starter tag, and get 404 for a
  private image (its name never confirmed).
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]
from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import (
    JsonLikeDictParser,
)
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from cargohold.auth.policy import Principal
from tests.images import Image, image, layer
from tests.integration.serverproc import run_cli
from tests.prerequisites import require

from .admin import administer
from .conftest import _containers_env, _serving

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .clients import ContainersEnv
    from .servers import RegistryServer

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]

ADMIN = ("root", "metadata-admin-password")
ROOT = Principal("user", "user:root", is_admin=True)
WAIT = 120.0
SPDX = "https://spdx.dev/Document/v2.3"
CYCLONEDX = "https://cyclonedx.org/bom/v1.6"
SLSA = "https://slsa.dev/provenance/v1"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    require("skopeo", "gpg", "openssl", "dpkg-query")
    yield from _serving(
        "cargohold",
        tmp_path_factory.mktemp("metadata-registry"),
        {
            "CARGOHOLD_AUTH_MODE": "token",
            "CARGOHOLD_ADMIN_USER": ADMIN[0],
            "CARGOHOLD_ADMIN_PASSWORD": ADMIN[1],
            "CARGOHOLD_SERVER_WORKERS": "2",
            "CARGOHOLD_SIGNING_ENABLED": "true",
            "CARGOHOLD_OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
        },
    )


@pytest.fixture(scope="module")
def env(
    registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ContainersEnv]:
    yield from _containers_env(tmp_path_factory.mktemp("containers"), registry)


def write_layout(root: Path, built: Image, tag: str) -> str:
    """An OCI image layout holding ``built`` as ``tag``; the ``oci:`` reference."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for data in (built.config, *built.layers, built.manifest):
        (blobs / hashlib.sha256(data).hexdigest()).write_bytes(data)
    entry = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": built.digest,
        "size": len(built.manifest),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "manifests": [entry]})
    )
    return f"oci:{root}:{tag}"


def host_packages() -> dict[str, str]:
    listed = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package}\t${Version}\n"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return dict(line.split("\t", 1) for line in listed.splitlines() if line)


def admin_headers(http: httpx.Client, scope: str) -> dict[str, str]:
    answer = http.get(
        "/token", params={"service": "cargohold", "scope": scope}, auth=ADMIN
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def metadata(http: httpx.Client, repo: str, ref: str, **kw: Any) -> httpx.Response:
    return http.get(f"/api/v1/repositories/{repo}/manifests/{ref}/metadata", **kw)


def wait_for(
    http: httpx.Client, repo: str, digest: str, done: Any, what: str
) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT
    while True:
        answer = metadata(http, repo, digest, auth=ADMIN)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        if done(found):
            return found
        assert time.monotonic() < deadline, f"{what}: not within {WAIT} s: {found}"
        time.sleep(0.2)


def complete(found: dict[str, Any]) -> bool:
    kinds = {a["predicate_type"] for a in found["attestations"]}
    return (
        found["description"]["state"] == "done"
        and {SLSA, SPDX, CYCLONEDX} <= kinds
        and {s["format"] for s in found["signatures"]}
        == {"simple-signing", "cosign", "sigstore-bundle"}
    )


def push_public_and_private(
    registry: RegistryServer, env: ContainersEnv, tmp_path: Path
) -> str:
    """This machine's dpkg status as an image in ``meta/public`` (its ``stable``
    tag a starter tag) and ``meta/private``, pushed by skopeo; its digest."""
    status = Path("/var/lib/dpkg/status").read_bytes()
    built = image(
        [layer({"var/lib/dpkg/status": status})],
        labels={"org.opencontainers.image.title": "host packages"},
    )
    source = write_layout(tmp_path / "layout", built, "stable")
    creds = f"--dest-creds={ADMIN[0]}:{ADMIN[1]}"
    for repo in ("meta/public", "meta/private"):
        env.run(
            env.skopeo(
                "copy", "--quiet", "--dest-tls-verify=false", creds, source,
                env.docker(repo, "stable"),
            )
        )  # fmt: skip

    async def publish(admin: Any) -> None:
        await admin.set_repository(
            ROOT, "meta/public", visibility="public", starter_tags=["stable"],
            client="test",
        )  # fmt: skip

    administer(registry.data_dir, publish)
    return built.digest


def check_cosign_signature(http: httpx.Client, digest: str, tmp_path: Path) -> None:
    """The ``.sig`` tag's payload names the image and verifies with openssl against
    the published ``cosign.pub``."""
    key_file = tmp_path / "cosign.pub"
    key_file.write_bytes(http.get("/.well-known/cargohold/cosign.pub").content)
    pull = admin_headers(http, "repository:meta/public:pull")
    sig = get_manifest(http, f"{digest.replace(':', '-')}.sig", pull)
    signature_layer = sig["layers"][0]
    payload = get_blob(http, signature_layer["digest"], pull)
    assert json.loads(payload)["critical"]["image"]["docker-manifest-digest"] == (
        digest
    )
    (tmp_path / "payload").write_bytes(payload)
    (tmp_path / "payload.sig").write_bytes(
        base64.b64decode(
            signature_layer["annotations"]["dev.cosignproject.cosign/signature"]
        )
    )
    checked = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(key_file),
         "-signature", str(tmp_path / "payload.sig"), str(tmp_path / "payload")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr


def attested(http: httpx.Client, digest: str) -> dict[str, dict[str, Any]]:
    """The ``.att`` tag's statements by predicate type, each DSSE envelope verified
    by securesystemslib with the registry's published ECDSA key."""
    published = http.get("/.well-known/cargohold/keys.json").json()["keys"]
    [key_id] = [
        k["key_id"]
        for k in published
        if (k["kind"], k["state"]) == ("ecdsa-p256", "active")
    ]
    pem = http.get("/.well-known/cargohold/cosign.pub").content
    key = SSlibKey.from_crypto(load_pem_public_key(pem), keyid=key_id)
    pull = admin_headers(http, "repository:meta/public:pull")
    att = get_manifest(http, f"{digest.replace(':', '-')}.att", pull)
    statements: dict[str, dict[str, Any]] = {}
    for described in att["layers"]:
        envelope = Envelope.from_dict(
            json.loads(get_blob(http, described["digest"], pull))
        )
        assert set(envelope.verify([key], 1)) == {key_id}, described
        statement = json.loads(envelope.payload)
        assert statement["subject"][0]["digest"]["sha256"] == digest.split(":")[1]
        statements[statement["predicateType"]] = statement["predicate"]
    return statements


def import_feed(
    registry: RegistryServer, tmp_path: Path, name: str, version: str
) -> None:
    """An OSV feed saying ``name`` (Debian) before ``version+fix1`` is affected."""
    feed = tmp_path / "feed"
    feed.mkdir()
    document = {
        "schema_version": "1.6.0",
        "id": "TEST-2026-0001",
        "modified": "2026-12-01T00:00:00Z",
        "summary": f"a flaw in {name}",
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": name},
                "ranges": [
                    {
                        "type": "ECOSYSTEM",
                        "events": [{"introduced": "0"}, {"fixed": f"{version}+fix1"}],
                    }
                ],
            }
        ],
        "database_specific": {"severity": "HIGH"},
    }
    (feed / "TEST-2026-0001.json").write_text(json.dumps(document))
    imported = run_cli("vulns", "import", str(feed), data_dir=registry.data_dir)
    assert imported.returncode == 0, imported.stderr


def get_manifest(http: httpx.Client, ref: str, headers: dict[str, str]) -> Any:
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    answer = http.get(f"/v2/meta/public/manifests/{ref}", headers=headers | accept)
    assert answer.status_code == 200, answer.text
    return answer.json()


def get_blob(http: httpx.Client, digest: str, headers: dict[str, str]) -> bytes:
    answer = http.get(f"/v2/meta/public/blobs/{digest}", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.content


def test_pushed_image_is_signed_described_attested_and_matched(
    registry: RegistryServer, env: ContainersEnv, tmp_path: Path
) -> None:
    digest = push_public_and_private(registry, env, tmp_path)
    with httpx.Client(base_url=registry.url, timeout=30.0) as http:
        found = wait_for(http, "meta/public", digest, complete, "signed and described")
        # What it is, and what is inside: the packages dpkg-query lists.
        assert (found["kind"], found["digest"]) == ("image", digest)
        assert found["platforms"] == [{"os": "linux", "architecture": "amd64"}]
        assert found["labels"] == {"org.opencontainers.image.title": "host packages"}
        listed = {
            p["name"]: p["version"]
            for p in found["packages"]["items"]
            if p["ecosystem"].startswith("Debian")
        }
        assert listed == host_packages()
        assert found["packages"]["count"] == len(found["packages"]["items"])
        # Every signature verifies; the cosign one with openssl too.
        assert found["verified"] is True
        assert all(s["verified"] for s in found["signatures"]), found["signatures"]
        check_cosign_signature(http, digest, tmp_path)
        # The attestations: provenance and both SBOMs, each verified.
        statements = attested(http, digest)
        assert {SLSA, SPDX, CYCLONEDX} <= set(statements)
        spdx = JsonLikeDictParser().parse(statements[SPDX])  # type: ignore[no-untyped-call]
        assert validate_full_spdx_document(spdx) == []
        assert {p.name for p in spdx.packages} >= set(host_packages())
        assert statements[CYCLONEDX]["specVersion"] == "1.6"
        # An OSV feed names a package of the image: the match shows, with the fix.
        name, version = min(host_packages().items())
        import_feed(registry, tmp_path, name, version)
        found = wait_for(
            http,
            "meta/public",
            digest,
            lambda f: f["vulnerabilities"]["counts"]["high"] >= 1,
            "the feed's match",
        )
        match = found["vulnerabilities"]["items"][0]
        assert (match["id"], match["package"], match["version"], match["fixed"]) == (
            "TEST-2026-0001", name, version, f"{version}+fix1",
        )  # fmt: skip
        # Anonymous: the public starter tag's metadata; nothing of the private image.
        public = metadata(http, "meta/public", "stable")
        assert public.status_code == 200, public.text
        assert public.json()["verified"] is True
        hidden = metadata(http, "meta/private", "stable")
        missing = metadata(http, "meta/nothing-here", "stable")
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json() == missing.json() | {"errors": hidden.json()["errors"]}
        assert hidden.json()["errors"][0]["code"] == missing.json()["errors"][0]["code"]
    # The CLI with the server's settings (its address is the signed identity).
    verified = run_cli(
        "verify",
        f"{registry.host}/meta/public@{digest}",
        data_dir=registry.data_dir,
        CARGOHOLD_SERVER_HOST="127.0.0.1",
        CARGOHOLD_SERVER_PORT=str(registry.port),
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.splitlines()[-1] == "verified"
