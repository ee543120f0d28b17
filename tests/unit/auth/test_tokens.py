"""Issuing and verifying registry tokens (no sockets)."""

from __future__ import annotations

import time

import jwt
import pytest

from cargohold.auth import keys
from cargohold.auth.keys import KeySet
from cargohold.auth.policy import Principal
from cargohold.auth.scopes import Access
from cargohold.auth.tokens import InvalidToken, TokenIssuer, TokenVerifier

ALICE = Principal("user", "user:alice")
ACCESS = [Access("repository", "a/b", ("pull",), ("latest",))]


@pytest.fixture(params=["ES256", "EdDSA"])
def keyset(request: pytest.FixtureRequest) -> KeySet:
    key = keys.generate(request.param, time.time())
    return KeySet(key, {key.kid: key})


def _pair(
    keyset: KeySet, *, issuer: str = "reg", service: str = "reg"
) -> tuple[TokenIssuer, TokenVerifier]:
    issuing = TokenIssuer(lambda: keyset, ttl=300, issuer=issuer, service=service)
    return issuing, TokenVerifier(lambda: keyset, issuer="reg", service="reg")


def test_round_trip(keyset: KeySet) -> None:
    issuer, verifier = _pair(keyset)
    token, ttl = issuer.issue(ALICE, ACCESS)
    assert ttl == 300
    verified = verifier.verify(token)
    assert verified.principal == ALICE
    assert verified.access == tuple(ACCESS)
    assert verified.find("repository", "a/b") == ACCESS[0]
    assert verified.find("repository", "c/d") is None
    assert verifier.verify(token) is verified  # cached


def test_find_merges_every_entry_for_a_resource(keyset: KeySet) -> None:
    issuer, verifier = _pair(keyset)
    entries = [
        Access("repository", "a/b", ("pull",), ("dev-*",)),
        Access("repository", "c/d", ("pull",)),
        Access("repository", "a/b", ("push",), ("rc-*",)),
    ]
    verified = verifier.verify(issuer.issue(ALICE, entries)[0])
    # Each action keeps the limit of the entries that granted it.
    assert verified.find("repository", "a/b") == Access(
        "repository", "a/b", ("pull", "push"), ("dev-*",), (("push", ("rc-*",)),)
    )
    assert verified.find("repository", "c/d") == entries[1]


def test_expired_even_from_cache(keyset: KeySet) -> None:
    issuer, verifier = _pair(keyset)
    token, _ = issuer.issue(ALICE, ACCESS)
    verifier.verify(token)
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(token, now=time.time() + 400)
    old, _ = issuer.issue(ALICE, ACCESS, now=time.time() - 400)
    with pytest.raises(InvalidToken):
        verifier.verify(old)


@pytest.mark.parametrize("field", ["service", "issuer"])
def test_other_registry_refused(keyset: KeySet, field: str) -> None:
    issuer, verifier = _pair(keyset, **{field: "elsewhere"})
    token, _ = issuer.issue(ALICE, ACCESS)
    with pytest.raises(InvalidToken):
        verifier.verify(token)


def test_garbage_and_unknown_keys(keyset: KeySet) -> None:
    _, verifier = _pair(keyset)
    with pytest.raises(InvalidToken, match="malformed"):
        verifier.verify("not-a-jwt")
    stranger = keys.generate("ES256", time.time())
    foreign = TokenIssuer(
        lambda: KeySet(stranger, {stranger.kid: stranger}),
        issuer="reg",
        service="reg",
        ttl=300,
    )
    with pytest.raises(InvalidToken, match="unknown key"):
        verifier.verify(foreign.issue(ALICE, ACCESS)[0])


def test_algorithm_must_match_the_key(keyset: KeySet) -> None:
    _, verifier = _pair(keyset)
    other = "EdDSA" if keyset.active.algorithm == "ES256" else "ES256"
    impostor = keys.generate(other, time.time())
    token = jwt.encode(
        {"sub": "x"},
        impostor.private_key,
        algorithm=other,
        headers={"kid": keyset.active.kid},
    )
    with pytest.raises(InvalidToken, match="algorithm"):
        verifier.verify(token)


def test_jwks_lists_public_keys_only(keyset: KeySet) -> None:
    (jwk,) = keyset.jwks()["keys"]
    assert jwk["kid"] == keyset.active.kid
    assert jwk["use"] == "sig"
    assert "d" not in jwk


def test_keys_survive_pem_round_trip(keyset: KeySet) -> None:
    key = keyset.active
    loaded = keys.load(key.kid, key.algorithm, key.private_pem(), key.created_at)
    assert loaded.public_jwk() == key.public_jwk()
