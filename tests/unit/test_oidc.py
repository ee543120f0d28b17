"""OIDC identity matching (pure) and the checks made before any key is fetched."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import httpx
import jwt
import pytest

from cargohold.auth.oidc import (
    JwksCache,
    OidcError,
    OidcIdentity,
    matches,
    verify_id_token,
)

ISSUER = "https://token.actions.githubusercontent.com"
AUDIENCE = "https://registry.example"
SUBJECT = "repo:acme/app:ref:refs/heads/main"
MISSING = object()

IDENTITY = OidcIdentity(
    name="acme-main",
    issuer=ISSUER,
    audience=AUDIENCE,
    subject="repo:acme/*:ref:refs/heads/main",
    claims={
        "repository_owner": "acme",
        "ref_protected": "true",
        "run_attempt": "[1-3]",
    },
)
CLAIMS: dict[str, Any] = {
    "iss": ISSUER,
    "aud": AUDIENCE,
    "sub": SUBJECT,
    "repository_owner": "acme",
    "ref_protected": "true",
    "run_attempt": "1",
}


def claims_with(**changes: object) -> dict[str, Any]:
    claims = {**CLAIMS, **changes}
    return {name: value for name, value in claims.items() if value is not MISSING}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({}, True, id="all-match"),
        # iss is compared exactly
        pytest.param({"iss": ISSUER + "/"}, False, id="iss-trailing-slash"),
        pytest.param({"iss": "https://gitlab.com"}, False, id="iss-other"),
        pytest.param({"iss": MISSING}, False, id="iss-missing"),
        # aud is the audience, or a list holding it
        pytest.param({"aud": [AUDIENCE, "other"]}, True, id="aud-list"),
        pytest.param({"aud": ["other", 7, AUDIENCE]}, True, id="aud-list-mixed"),
        pytest.param({"aud": ["other"]}, False, id="aud-list-without"),
        pytest.param({"aud": "other"}, False, id="aud-other"),
        pytest.param({"aud": AUDIENCE.upper()}, False, id="aud-case"),
        pytest.param({"aud": {AUDIENCE: True}}, False, id="aud-object"),
        pytest.param({"aud": MISSING}, False, id="aud-missing"),
        # sub is an anchored, case-sensitive glob
        pytest.param(
            {"sub": "repo:acme/tool:ref:refs/heads/main"}, True, id="sub-glob"
        ),
        pytest.param(
            {"sub": "repo:acme/a/b:ref:refs/heads/main"}, True, id="sub-star-slash"
        ),
        pytest.param(
            {"sub": "repo:evil/app:ref:refs/heads/main"}, False, id="sub-owner"
        ),
        pytest.param({"sub": "repo:acme/app:ref:refs/heads/dev"}, False, id="sub-ref"),
        pytest.param({"sub": SUBJECT + "x"}, False, id="sub-suffix"),
        pytest.param({"sub": "x" + SUBJECT}, False, id="sub-prefix"),
        pytest.param({"sub": SUBJECT.upper()}, False, id="sub-case"),
        pytest.param({"sub": 42}, False, id="sub-number"),
        pytest.param({"sub": MISSING}, False, id="sub-missing"),
        # configured claims are present, stringified, glob-matched
        pytest.param({"repository_owner": "acme2"}, False, id="claim-other"),
        pytest.param({"repository_owner": "ACME"}, False, id="claim-case"),
        pytest.param({"repository_owner": MISSING}, False, id="claim-missing"),
        pytest.param({"repository_owner": None}, False, id="claim-null"),
        pytest.param({"repository_owner": ["acme"]}, False, id="claim-list"),
        pytest.param({"repository_owner": {"a": "acme"}}, False, id="claim-object"),
        pytest.param({"ref_protected": True}, True, id="claim-bool-true"),
        pytest.param({"ref_protected": False}, False, id="claim-bool-false"),
        pytest.param({"ref_protected": "True"}, False, id="claim-bool-spelling"),
        pytest.param({"run_attempt": 3}, True, id="claim-int"),
        pytest.param({"run_attempt": 4}, False, id="claim-int-out-of-class"),
        pytest.param({"run_attempt": "12"}, False, id="claim-anchored"),
        pytest.param({"run_attempt": 2.0}, False, id="claim-float-spelling"),
        pytest.param({"extra": "anything"}, True, id="unconfigured-claim-ignored"),
    ],
)
def test_matches(changes: dict[str, object], expected: bool) -> None:
    assert matches(IDENTITY, claims_with(**changes)) is expected


@pytest.mark.parametrize(
    ("subject", "claims", "sub", "expected"),
    [
        pytest.param("*", {}, "anything:at/all", True, id="star-subject"),
        pytest.param(
            "repo:acme/app:*",
            {"sub": "*"},
            "repo:evil/x",
            False,
            id="claims-sub-cannot-widen-subject",
        ),
        pytest.param(
            "repo:acme/app:*",
            {"sub": "repo:*:ref:*"},
            "repo:acme/app:ref:x",
            True,
            id="claims-sub-also-checked",
        ),
        pytest.param(
            "repo:acme/app:?", {}, "repo:acme/app:ab", False, id="question-mark"
        ),
        pytest.param("repo:[ab]", {}, "repo:b", True, id="character-class"),
    ],
)
def test_matches_patterns(
    subject: str, claims: dict[str, str], sub: str, expected: bool
) -> None:
    identity = OidcIdentity("n", ISSUER, AUDIENCE, subject, claims)
    assert matches(identity, {"iss": ISSUER, "aud": AUDIENCE, "sub": sub}) is expected


def test_identity_is_frozen_and_keeps_its_own_claims() -> None:
    patterns = {"repository_owner": "acme"}
    identity = OidcIdentity("n", ISSUER, AUDIENCE, "*", patterns)
    patterns["repository_owner"] = "*"
    assert identity.claims == {"repository_owner": "acme"}
    with pytest.raises(TypeError):
        identity.claims["environment"] = "*"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        identity.subject = "*"  # type: ignore[misc]
    assert OidcIdentity("n", ISSUER, AUDIENCE, "*").claims == {}


# -- rejections before any key is fetched (no network: the transport must not be called)


def refuse(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected request to {request.url}")


def forged(payload: dict[str, Any], **header: Any) -> str:
    """A token with ``header`` and ``payload`` as given and a meaningless signature."""
    segments = [json.dumps(part).encode() for part in (header, payload)]
    return (
        ".".join(base64.urlsafe_b64encode(s).rstrip(b"=").decode() for s in segments)
        + ".c2ln"
    )


HMAC_KEY = "0123456789abcdef0123456789abcdef"
OTHER_ISSUER = {**CLAIMS, "iss": "https://gitlab.com"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("token", "message"),
    [
        pytest.param("", "malformed", id="empty"),
        pytest.param("not-a-jwt", "malformed", id="garbage"),
        pytest.param("a.b.c", "malformed", id="bad-segments"),
        pytest.param("x" * 20_000, "malformed", id="oversized"),
        pytest.param(forged(CLAIMS, alg="none", kid="k"), "algorithm", id="alg-none"),
        pytest.param(
            jwt.encode(CLAIMS, HMAC_KEY, algorithm="HS256", headers={"kid": "k"}),
            "algorithm",
            id="hs256",
        ),
        pytest.param(
            forged(CLAIMS, alg=["RS256"], kid="k"), "algorithm", id="alg-list"
        ),
        pytest.param(forged(CLAIMS, alg="RS512", kid="k"), "algorithm", id="alg-rs512"),
        pytest.param(forged(CLAIMS, alg="RS256"), "key id", id="no-kid"),
        pytest.param(forged(CLAIMS, alg="RS256", kid=""), "key id", id="empty-kid"),
        pytest.param(forged(CLAIMS, alg="RS256", kid=7), "malformed", id="kid-number"),
        pytest.param(
            forged(OTHER_ISSUER, alg="RS256", kid="k"), "not trusted", id="other-issuer"
        ),
        pytest.param(
            forged({**CLAIMS, "iss": ["x"]}, alg="RS256", kid="k"),
            "not trusted",
            id="issuer-list",
        ),
        pytest.param(
            forged({"sub": "x"}, alg="RS256", kid="k"), "not trusted", id="no-issuer"
        ),
    ],
)
async def test_rejected_before_fetching_keys(token: str, message: str) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(OidcError, match=message):
            await verify_id_token(token, [IDENTITY], JwksCache(client))


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("issuer", "allowed"),
    [
        pytest.param("https://issuer.example", True, id="https"),
        pytest.param("https://issuer.example/tenant/", True, id="https-path"),
        pytest.param("http://127.0.0.1:8080", True, id="loopback-v4"),
        pytest.param("http://localhost:8080", True, id="localhost"),
        pytest.param("http://LOCALHOST", True, id="localhost-case"),
        pytest.param("http://[::1]:8080", True, id="loopback-v6"),
        pytest.param("http://issuer.example", False, id="http"),
        pytest.param("http://127.0.0.1.nip.io", False, id="loopback-lookalike"),
        pytest.param("http://localhost.example", False, id="localhost-lookalike"),
        pytest.param("http://10.0.0.1", False, id="private-address"),
        pytest.param("ftp://issuer.example", False, id="other-scheme"),
        pytest.param("https://user:pw@issuer.example", False, id="userinfo"),
        pytest.param("https://[::1", False, id="unparsable"),
        pytest.param("issuer.example", False, id="no-scheme"),
    ],
)
async def test_issuer_url_rule(issuer: str, allowed: bool) -> None:
    requested: list[str] = []

    def not_found(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        return httpx.Response(404)

    async with httpx.AsyncClient(transport=httpx.MockTransport(not_found)) as client:
        with pytest.raises(OidcError) as raised:
            await JwksCache(client).get_key(issuer, "k")
    if allowed:
        assert "answered 404" in str(raised.value)
        discovery = httpx.URL(issuer.rstrip("/") + "/.well-known/openid-configuration")
        assert requested == [str(discovery)]
    else:
        assert requested == []
