"""``cargohold.network`` (requirements from settings) and ``doctor.Target.parse``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cargohold.doctor import DoctorUsageError, Target
from cargohold.network import registry_url, render_text, requirements
from cargohold.settings import AuthSettings, S3Storage, ServerSettings, Settings


def settings(**server: object) -> Settings:
    return Settings(server=ServerSettings(**server))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("server", "url", "port", "tls"),
    [
        ({}, "http://127.0.0.1:5000", 5000, False),
        ({"host": "::1", "port": 80}, "http://[::1]:80", 80, False),
        (
            {"tls_cert": Path("c"), "tls_key": Path("k"), "port": 5443},
            "https://127.0.0.1:5443",
            5443,
            True,
        ),
        ({"public_url": "https://r.example/"}, "https://r.example", 443, True),
        ({"public_url": "http://r.example:8080"}, "http://r.example:8080", 8080, False),
    ],
)
def test_registry_endpoint(
    server: dict[str, object], url: str, port: int, tls: bool
) -> None:
    assert registry_url(settings(**server)) == url
    (endpoint,) = requirements(settings(**server)).endpoints
    assert (endpoint.url, endpoint.port, endpoint.tls) == (url, port, tls)
    assert endpoint.role == "registry"


def test_realm_on_another_host_is_a_second_endpoint() -> None:
    s = Settings(
        server=ServerSettings(public_url="https://r.example"),
        auth=AuthSettings(realm="https://auth.example:8443/token"),
    )
    endpoints = requirements(s).endpoints
    assert [(e.role, e.host, e.port) for e in endpoints] == [
        ("registry", "r.example", 443),
        ("token realm", "auth.example", 8443),
    ]
    same = Settings(
        server=ServerSettings(public_url="https://r.example"),
        auth=AuthSettings(realm="https://r.example/token"),
    )
    assert len(requirements(same).endpoints) == 1


def test_s3_redirects_add_the_object_store_as_an_endpoint() -> None:
    s3 = S3Storage(
        bucket="blobs", endpoint_url="https://s3.example:9000", redirect=True
    )
    req = requirements(Settings(storage=s3))
    assert req.blob_redirects
    assert [(e.role, e.host, e.port) for e in req.endpoints][1:] == [
        ("object store", "s3.example", 9000)
    ]
    assert "s3.example" in req.blob_redirect_note
    assert any("s3.example port 9000" in line for line in req.allowlist)
    on_aws = requirements(Settings(storage=S3Storage(bucket="blobs", redirect=True)))
    assert on_aws.endpoints[-1].host == "s3.us-east-1.amazonaws.com"
    streamed = requirements(Settings(storage=S3Storage(bucket="blobs")))
    assert not streamed.blob_redirects
    assert len(streamed.endpoints) == 1


def test_auth_off_and_starter_tags() -> None:
    s = Settings(auth=AuthSettings(mode="none", starter_tags=("stable",)))
    req = requirements(s)
    assert "no credentials needed" in req.cache_credentials
    assert "starter tags (stable)" in req.starter_note
    assert "Plain HTTP" in req.tls_note
    text = render_text(req)
    assert "Blob redirects: no." in text
    assert json.loads(json.dumps(req.to_json()))["starter_tags"] == ["stable"]


@pytest.mark.parametrize(
    ("registry", "image", "expected"),
    [
        ("r.example", None, ("https://r.example", "r.example", 443, True, None, None)),
        (
            "http://127.0.0.1:5000",
            "acme/app:1.0",
            ("http://127.0.0.1:5000", "127.0.0.1", 5000, False, "acme/app", "1.0"),
        ),
        (
            "localhost:5000",
            "a/b:c",
            ("https://localhost:5000", "localhost", 5000, True, "a/b", "c"),
        ),
    ],
)
def test_target_parse(
    registry: str, image: str | None, expected: tuple[object, ...]
) -> None:
    t = Target.parse(registry, image)
    assert (t.url, t.host, t.port, t.tls, t.repository, t.tag) == expected


@pytest.mark.parametrize(
    ("registry", "image"),
    [
        ("ftp://r.example", None),
        ("https://", None),
        ("r.example:notaport", None),
        ("r.example", "no-tag"),
        ("r.example", ":tag"),
        ("r.example", "a/b@sha256:00"),
        ("r.example", "host:5000/a"),
    ],
)
def test_target_parse_rejects(registry: str, image: str | None) -> None:
    with pytest.raises(DoctorUsageError):
        Target.parse(registry, image)
