"""Pure parts of simple signing: the payload, its checks, the extension's body, the
public host."""

from __future__ import annotations

import base64
import json

import pytest

from cargohold.metadata.signatures import StoredSignature
from cargohold.registry.signing.formats import SigningTarget
from cargohold.registry.signing.service import (
    MAX_SIGNATURE_BYTES,
    SignatureInvalid,
    extension_entry,
    parse_extension_signature,
)
from cargohold.registry.signing.simple import check_payload, payload
from cargohold.settings import ServerSettings

DIGEST = "sha256:" + "ab" * 32
TARGET = SigningTarget(
    "acme/app", DIGEST, "application/vnd.oci.image.manifest.v1+json",
    "registry.example.com/acme/app",
)  # fmt: skip


def test_payload_is_an_atomic_container_signature() -> None:
    document = json.loads(payload(TARGET, timestamp=1_700_000_000))
    assert document["critical"] == {
        "identity": {"docker-reference": "registry.example.com/acme/app"},
        "image": {"docker-manifest-digest": DIGEST},
        "type": "atomic container signature",
    }
    assert document["optional"]["timestamp"] == 1_700_000_000
    assert document["optional"]["creator"].startswith("cargohold ")
    assert check_payload(payload(TARGET, timestamp=1), TARGET) is None


def _claim(**critical: object) -> bytes:
    base = {
        "identity": {"docker-reference": TARGET.docker_reference},
        "image": {"docker-manifest-digest": DIGEST},
        "type": "atomic container signature",
    }
    return json.dumps({"critical": base | critical}).encode()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not json", "not an atomic container signature"),
        (b"[]", "not an atomic container signature"),
        (b'{"critical": {}}', "not an atomic container signature"),
        (_claim(type="cosign container image signature"), "type"),
        (_claim(image={"docker-manifest-digest": "sha256:" + "cd" * 32}), "another"),
        (
            _claim(identity={"docker-reference": "registry.example.com/acme/other"}),
            "copied from another repository",
        ),
        (
            _claim(identity={"docker-reference": "elsewhere.example/acme/app"}),
            "copied from another repository",
        ),
    ],
)
def test_check_payload_says_why_not(data: bytes, reason: str) -> None:
    problem = check_payload(data, TARGET)
    assert problem is not None
    assert reason in problem


def _body(**fields: object) -> bytes:
    entry = {
        "schemaVersion": 2,
        "name": f"{DIGEST}@{'0' * 32}",
        "type": "atomic",
        "content": base64.b64encode(b"\x90signed").decode(),
    }
    return json.dumps(entry | fields).encode()


def test_parse_extension_signature_takes_containers_image_body() -> None:
    assert parse_extension_signature(_body(), DIGEST) == b"\x90signed"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "not JSON"),
        (b"[1]", "JSON object"),
        (_body(schemaVersion=1), "schemaVersion"),
        (_body(type="cosign"), "type"),
        (_body(name="sha256:" + "cd" * 32 + "@x"), "name"),
        (_body(name=7), "name"),
        (_body(content=5), "base64 string"),
        (_body(content="!!!"), "not valid base64"),
        (_body(content=""), "1 to"),
        (
            _body(content=base64.b64encode(b"x" * (MAX_SIGNATURE_BYTES + 1)).decode()),
            "1 to",
        ),
        (b" " * (MAX_SIGNATURE_BYTES * 2 + 1), "at most"),
    ],
)
def test_parse_extension_signature_refuses_clearly(body: bytes, reason: str) -> None:
    with pytest.raises(SignatureInvalid) as refused:
        parse_extension_signature(body, DIGEST)
    assert refused.value.status == 400
    assert reason in str(refused.value.detail)


def test_extension_entry_round_trips_through_the_parser() -> None:
    stored = StoredSignature(
        7, "acme/app", DIGEST, b"\x90sig", "sha256:" + "ef" * 32, None, "bob", 1.0
    )
    entry = extension_entry(stored)
    assert entry["schemaVersion"] == 2
    assert entry["type"] == "atomic"
    assert entry["name"] == f"{DIGEST}@{'ef' * 16}"
    assert parse_extension_signature(json.dumps(entry).encode(), DIGEST) == b"\x90sig"


@pytest.mark.parametrize(
    ("server", "host"),
    [
        (ServerSettings(), "127.0.0.1:5000"),
        (ServerSettings(host="0.0.0.0", port=8080), "0.0.0.0:8080"),  # noqa: S104
        (ServerSettings(host="::1", port=5000), "[::1]:5000"),
        (
            ServerSettings(public_url="https://registry.example.com"),
            "registry.example.com",
        ),
        (
            ServerSettings(public_url="https://registry.example.com:8443/"),
            "registry.example.com:8443",
        ),
    ],
)
def test_public_host(server: ServerSettings, host: str) -> None:
    assert server.public_host == host
