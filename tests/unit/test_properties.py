"""Property tests of the pure parsers: whatever a client sends, the only exceptions are
the OCI errors (``RegistryError`` subclasses) or the documented "malformed" answer
(``None``, ``InvalidToken``); what is valid round-trips.

Bugs the properties found have their own example test below, so each stays pinned.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cargohold.auth import keys
from cargohold.auth.keys import KeySet
from cargohold.auth.scopes import Access, Scope, parse_scope, parse_scopes
from cargohold.auth.tokens import InvalidToken, TokenVerifier, VerifiedToken
from cargohold.oci import mediatypes as mt
from cargohold.oci.digest import Digest
from cargohold.oci.errors import DigestInvalid, ManifestInvalid, RegistryError
from cargohold.oci.manifest import Manifest, parse_manifest
from cargohold.oci.names import RepositoryName, Tag, page_size
from cargohold.oci.ranges import parse_content_range

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=15,
)
component = st.from_regex(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*", fullmatch=True)
names = st.lists(component, min_size=1, max_size=4).map("/".join)
digests = st.one_of(
    st.binary(max_size=64).map(lambda b: str(Digest.of(b))),
    st.binary(max_size=64).map(lambda b: str(Digest.of(b, "sha512"))),
)
media_types = st.sampled_from([*sorted(mt.MANIFESTS), *sorted(mt.LEGACY), ""])


def _returns_or_oci_error(parse: Callable[..., Any], *args: Any) -> Any:
    try:
        return parse(*args)
    except RegistryError:
        return None


# --- names, references, digests -------------------------------------------------------


@given(st.text(max_size=300))
def test_any_text_is_a_repository_name_or_name_invalid(text: str) -> None:
    parsed = _returns_or_oci_error(RepositoryName.parse, text)
    assert parsed is None or parsed.value == text


@given(names)
def test_grammar_names_parse(name: str) -> None:
    if len(name) <= 255:
        assert str(RepositoryName.parse(name)) == name
        assert RepositoryName.parse(name).namespace == name.split("/", maxsplit=1)[0]


@given(st.text(max_size=200))
def test_any_text_is_a_tag_or_manifest_invalid(text: str) -> None:
    parsed = _returns_or_oci_error(Tag.parse, text)
    assert parsed is None or str(parsed) == text


@given(st.from_regex(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", fullmatch=True))
def test_grammar_tags_parse(tag: str) -> None:
    assert str(Tag.parse(tag)) == tag


@given(st.text(max_size=200) | digests.map(lambda d: d + "\n"))
def test_any_text_is_a_digest_or_digest_invalid(text: str) -> None:
    parsed = _returns_or_oci_error(Digest.parse, text)
    assert parsed is None or str(parsed) == text


@given(digests)
def test_digests_round_trip(text: str) -> None:
    assert str(Digest.parse(text)) == text
    algorithm, _, encoded = text.partition(":")
    if encoded != encoded.upper():  # the spec's hex is lower-case
        with pytest.raises(DigestInvalid):
            Digest.parse(f"{algorithm}:{encoded.upper()}")


@given(st.text(max_size=30) | st.none(), st.integers(min_value=1, max_value=10_000))
def test_page_size_is_bounded_or_an_error(text: str | None, maximum: int) -> None:
    size = _returns_or_oci_error(lambda: page_size(text, maximum=maximum))
    assert size is None or 0 <= size <= maximum


# --- Content-Range --------------------------------------------------------------------


@given(st.text(max_size=60))
def test_any_content_range_parses_or_is_range_invalid(text: str) -> None:
    parsed = _returns_or_oci_error(parse_content_range, text)
    assert parsed is None or 0 <= parsed[0] <= parsed[1]


@given(st.integers(0, 2**63), st.integers(0, 2**20), st.sampled_from(["", "bytes="]))
def test_content_ranges_round_trip(start: int, length: int, unit: str) -> None:
    assert parse_content_range(f"{unit}{start}-{start + length}") == (
        start,
        start + length,
    )


# --- scopes and token claims ----------------------------------------------------------


@given(st.text(max_size=80))
def test_any_scope_text_parses_or_is_ignored(text: str) -> None:
    scope = parse_scope(text)
    assert scope is None or (scope.type and scope.name and scope.actions)


@given(st.lists(st.text(max_size=80), max_size=5))
def test_scope_lists_never_raise(values: list[str]) -> None:
    assert all(isinstance(s, Scope) for s in parse_scopes(values))


actions = st.lists(st.sampled_from(["pull", "push", "delete", "*"]), min_size=1)


@given(names, actions)
def test_scopes_round_trip(name: str, wanted: list[str]) -> None:
    scope = Scope("repository", name, frozenset(wanted))
    assert parse_scope(str(scope)) == scope


@given(json_values)
def test_any_claim_is_an_access_or_none(claim: Any) -> None:
    access = Access.from_claim(claim)
    assert access is None or Access.from_claim(access.to_claim()) == access


@given(
    st.text(max_size=20),
    st.text(max_size=40),
    st.lists(st.text(max_size=10)).map(tuple),
    st.none() | st.lists(st.text(max_size=10)).map(tuple),
)
def test_access_claims_round_trip(
    kind: str, name: str, wanted: tuple[str, ...], tags: tuple[str, ...] | None
) -> None:
    access = Access(kind, name, wanted, tags)
    assert Access.from_claim(json.loads(json.dumps(access.to_claim()))) == access


KEY = keys.generate("ES256", time.time())
VERIFIER = TokenVerifier(
    lambda: KeySet(KEY, {KEY.kid: KEY}), issuer="reg", service="reg"
)


def _signed(claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
    return jwt.encode(
        claims,
        KEY.private_key,
        algorithm="ES256",
        headers={"kid": KEY.kid} | (headers or {}),
    )


def _verified_or_invalid(token: str) -> VerifiedToken | None:
    try:
        return VERIFIER.verify(token)
    except InvalidToken:
        return None


@given(st.text(max_size=300))
def test_any_bearer_text_is_a_token_or_invalid(text: str) -> None:
    assert _verified_or_invalid(text) is None


@given(st.dictionaries(st.text(max_size=10), json_values, max_size=8))
def test_signed_tokens_of_any_claim_shape_verify_or_are_invalid(
    claims: dict[str, Any],
) -> None:
    _verified_or_invalid(_signed(claims))


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "sub": json_values,
            "kind": json_values,
            "admin": json_values,
            "access": json_values,
            "jti": json_values,
        },
    )
)
def test_valid_envelopes_with_any_payload_verify_or_are_invalid(
    payload: dict[str, Any],
) -> None:
    now = int(time.time())
    claims = {"iss": "reg", "aud": "reg", "sub": "user:x"} | payload
    claims |= {"iat": now, "nbf": now, "exp": now + 60}
    verified = _verified_or_invalid(_signed(claims))
    if verified is not None:
        assert all(isinstance(a, Access) for a in verified.access)
        assert verified.principal.is_admin is (claims.get("admin") is True)


@given(json_values)
@example(True)  # claim values found to break verification
@example(5)
@example({"type": "repository"})
def test_any_access_claim_value_verifies_or_is_invalid(value: Any) -> None:
    # An entry list of another shape (a number, a string, an object) is not an error
    # of the server: at worst the token carries no access.
    now = int(time.time())
    claims = {"iss": "reg", "aud": "reg", "sub": "user:x", "access": value}
    claims |= {"iat": now, "nbf": now, "exp": now + 60}
    _verified_or_invalid(_signed(claims))


# --- manifests and indexes ------------------------------------------------------------


def _descriptor_like() -> st.SearchStrategy[Any]:
    good = st.fixed_dictionaries(
        {
            "mediaType": st.sampled_from([mt.OCI_MANIFEST, "application/x", ""]),
            "digest": digests,
            "size": st.integers(min_value=0, max_value=2**40),
        },
        optional={
            "urls": json_values,
            "annotations": json_values,
            "artifactType": json_values,
            "platform": json_values,
        },
    )
    return good | json_values


def _manifest_like() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"schemaVersion": st.sampled_from([2, 2.0, 1, "2", None])},
        optional={
            "mediaType": media_types | json_values,
            "config": _descriptor_like(),
            "layers": st.lists(_descriptor_like(), max_size=3) | json_values,
            "manifests": st.lists(_descriptor_like(), max_size=3) | json_values,
            "subject": _descriptor_like(),
            "artifactType": json_values,
            "annotations": json_values,
        },
    )


def _parsed_or_oci_error(data: bytes, content_type: str | None) -> Manifest | None:
    try:
        return parse_manifest(data, content_type)
    except RegistryError:
        return None


@given(st.binary(max_size=300), media_types | st.none() | st.text(max_size=40))
def test_any_bytes_are_a_manifest_or_an_oci_error(
    data: bytes, content_type: str | None
) -> None:
    _parsed_or_oci_error(data, content_type)


@given(json_values, media_types)
def test_any_json_is_a_manifest_or_an_oci_error(value: Any, content_type: str) -> None:
    _parsed_or_oci_error(json.dumps(value).encode(), content_type)


@given(_manifest_like(), media_types | st.none())
def test_manifest_shaped_documents_parse_or_are_oci_errors(
    document: dict[str, Any], content_type: str | None
) -> None:
    manifest = _parsed_or_oci_error(json.dumps(document).encode(), content_type)
    if manifest is not None:
        assert manifest.media_type in mt.MANIFESTS
        if manifest.is_index:
            assert len(manifest.manifests) == len(document["manifests"])
        else:
            assert len(manifest.layers) == len(document["layers"])


@given(
    st.lists(st.tuples(digests, st.integers(0, 2**40)), max_size=4),
    st.sampled_from(sorted(mt.INDEXES)),
)
def test_valid_indexes_parse_whole(
    children: list[tuple[str, int]], media_type: str
) -> None:
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [
            {"mediaType": mt.OCI_MANIFEST, "digest": d, "size": s} for d, s in children
        ],
    }
    manifest = parse_manifest(json.dumps(document).encode(), media_type)
    assert manifest.is_index
    assert [(str(c.digest), c.size) for c in manifest.manifests] == children


@pytest.mark.parametrize("bracket", ["[]", '{"a":}'])
def test_a_manifest_nested_10000_deep_is_manifest_invalid(bracket: str) -> None:
    opening, closing = (
        ("[" * 10_000, "]" * 10_000)
        if bracket == "[]"
        else ('{"a":' * 10_000, "}" * 10_000)
    )
    data = f'{{"schemaVersion": 2, "layers": {opening}1{closing}}}'.encode()
    with pytest.raises(ManifestInvalid):
        parse_manifest(data, mt.OCI_MANIFEST)


def test_duplicate_keys_are_manifest_invalid() -> None:
    config = {"mediaType": mt.OCI_MANIFEST, "digest": str(Digest.of(b"c")), "size": 1}
    first, second = json.dumps(config), json.dumps(config | {"size": 2})
    body = f'"schemaVersion": 2, "config": {first}, "config": {second}, "layers": []'
    data = ("{" + body + "}").encode()
    parse_manifest(data.replace(b', "config": ' + first.encode(), b""), None)  # valid
    with pytest.raises(ManifestInvalid):
        parse_manifest(data, mt.OCI_MANIFEST)
