"""verify_id_token against a real OIDC issuer served over loopback HTTP."""

from __future__ import annotations

import base64
import json
import time
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.warnings import InsecureKeyLengthWarning

from cargohold.auth.oidc import JwksCache, OidcError, OidcIdentity, verify_id_token
from tests.oidc_issuer import OidcIssuer, SigningKey

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

pytestmark = pytest.mark.anyio

AUDIENCE = "https://registry.example"
SUBJECT = "repo:acme/app:ref:refs/heads/main"
CLAIMS = {"repository_owner": "acme", "workflow": "release"}
DISCOVERY = "/.well-known/openid-configuration"


class FakeClock:
    """The JwksCache's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def initial_keys() -> tuple[SigningKey, ...]:
    return SigningKey.generate("RSA"), SigningKey.generate("EC")


@pytest.fixture
def issuer(initial_keys: tuple[SigningKey, ...]) -> Iterator[OidcIssuer]:
    with OidcIssuer(keys=initial_keys) as running:
        yield running


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


@pytest.fixture
def jwks(http: httpx.AsyncClient, clock: FakeClock) -> JwksCache:
    return JwksCache(http, clock=clock, timeout=5)


@pytest.fixture
def identity(issuer: OidcIssuer) -> OidcIdentity:
    return OidcIdentity(
        name="acme-main",
        issuer=issuer.url,
        audience=AUDIENCE,
        subject="repo:acme/*:ref:refs/heads/main",
        claims={"repository_owner": "acme", "workflow": "release*"},
    )


def mint(issuer: OidcIssuer, **options: Any) -> str:
    """A token that ``identity`` accepts, unless ``options`` say otherwise."""
    options.setdefault("claims", CLAIMS)
    return issuer.mint(
        options.pop("sub", SUBJECT), options.pop("aud", AUDIENCE), **options
    )


def jwks_fetches(issuer: OidcIssuer) -> int:
    return issuer.requests.get("/jwks", 0)


# -- accepted tokens ----------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_token_is_accepted(
    issuer: OidcIssuer, jwks: JwksCache, identity: OidcIdentity, alg: str
) -> None:
    token = mint(issuer, key=issuer.key(alg))
    assert await verify_id_token(token, [identity], jwks) is identity
    assert issuer.requests == {DISCOVERY: 1, "/jwks": 1}


async def test_eddsa_token_is_accepted(
    issuer: OidcIssuer, jwks: JwksCache, identity: OidcIdentity
) -> None:
    key = issuer.rotate("Ed25519")
    assert await verify_id_token(mint(issuer, key=key), [identity], jwks) is identity


async def test_keys_are_cached(
    issuer: OidcIssuer, jwks: JwksCache, identity: OidcIdentity, clock: FakeClock
) -> None:
    for alg in ("RS256", "ES256", "RS256"):
        await verify_id_token(mint(issuer, key=issuer.key(alg)), [identity], jwks)
        clock.advance(100)
    assert jwks_fetches(issuer) == 1


async def test_concurrent_verifications_fetch_once(
    issuer: OidcIssuer, jwks: JwksCache, identity: OidcIdentity
) -> None:
    token = mint(issuer)
    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(verify_id_token, token, [identity], jwks)
    assert issuer.requests == {DISCOVERY: 1, "/jwks": 1}


async def test_first_matching_identity_wins(
    issuer: OidcIssuer, jwks: JwksCache, identity: OidcIdentity
) -> None:
    other_repo = OidcIdentity("other", issuer.url, AUDIENCE, "repo:other/*")
    other_audience = OidcIdentity("aud", issuer.url, "https://elsewhere", "*")
    catch_all = OidcIdentity("any", issuer.url, AUDIENCE, "repo:*")
    identities = [other_repo, other_audience, identity, catch_all]
    assert await verify_id_token(mint(issuer), identities, jwks) is identity
    token = mint(issuer, aud=["https://elsewhere", "https://unrelated"])
    assert await verify_id_token(token, identities, jwks) is other_audience


async def test_issuer_with_a_path(http: httpx.AsyncClient) -> None:
    with OidcIssuer(path="/tenants/acme") as issuer:
        identity = OidcIdentity("t", issuer.url, AUDIENCE, SUBJECT)
        token = mint(issuer, claims={})
        assert await verify_id_token(token, [identity], JwksCache(http)) is identity
    assert issuer.requests == {DISCOVERY: 1, "/jwks": 1}


# -- validity window (leeway 30 s) --------------------------------------------------

NOW = time.time()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(
            {"issued_at": NOW - 400, "expires_in": 300}, "expired", id="expired"
        ),
        pytest.param(
            {"issued_at": NOW - 330, "expires_in": 300}, "expired", id="at-leeway"
        ),
        pytest.param({"issued_at": NOW - 310, "expires_in": 300}, None, id="in-leeway"),
        pytest.param({"not_before": NOW + 120}, "not yet valid", id="nbf-future"),
        pytest.param({"not_before": NOW + 10}, None, id="nbf-in-leeway"),
        pytest.param({"issued_at": NOW + 120}, "not yet valid", id="iat-future"),
        pytest.param({"issued_at": NOW + 10}, None, id="iat-in-leeway"),
        pytest.param({"claims": {**CLAIMS, "exp": None}}, "lacks the exp", id="no-exp"),
        pytest.param({"claims": {**CLAIMS, "iat": None}}, "lacks the iat", id="no-iat"),
        pytest.param(
            {"claims": {**CLAIMS, "exp": "soon"}},
            "exp claim is not a number",
            id="exp-string",
        ),
        pytest.param(
            {"claims": {**CLAIMS, "exp": True}},
            "exp claim is not a number",
            id="exp-bool",
        ),
        pytest.param(
            {"claims": {**CLAIMS, "nbf": "x"}},
            "nbf claim is not a number",
            id="nbf-string",
        ),
    ],
)
async def test_validity_window(
    issuer: OidcIssuer,
    jwks: JwksCache,
    identity: OidcIdentity,
    options: dict[str, Any],
    message: str | None,
) -> None:
    # Every time in the token is relative to NOW (fixed at collection), never to the
    # moment the test happens to run.
    token = mint(issuer, **({"issued_at": NOW} | options))
    if message is None:
        assert await verify_id_token(token, [identity], jwks, now=NOW) is identity
    else:
        with pytest.raises(OidcError, match=message):
            await verify_id_token(token, [identity], jwks, now=NOW)


async def test_infinite_expiry_is_rejected(
    issuer: OidcIssuer, jwks: JwksCache, identity: OidcIdentity
) -> None:
    # Python's json reads the bare word Infinity; a token must not live forever.
    token = mint(issuer, claims={**CLAIMS, "exp": float("inf")})
    assert ".eyJ" in token
    with pytest.raises(OidcError, match="exp claim is not a number"):
        await verify_id_token(token, [identity], jwks)


async def test_default_clock_is_the_system_clock(
    issuer: OidcIssuer, jwks: JwksCache, identity: OidcIdentity
) -> None:
    with pytest.raises(OidcError, match="expired"):
        await verify_id_token(mint(issuer, expires_in=-60), [identity], jwks)


# -- audience, issuer, patterns -----------------------------------------------------


async def test_wrong_audience(
    issuer: OidcIssuer, jwks: JwksCache, identity: OidcIdentity
) -> None:
    for aud in ("https://elsewhere", ["https://elsewhere"]):
        with pytest.raises(OidcError, match="another audience"):
            await verify_id_token(mint(issuer, aud=aud), [identity], jwks)


async def test_unknown_issuer_is_never_contacted(
    issuer: OidcIssuer, jwks: JwksCache, identity: OidcIdentity
) -> None:
    token = mint(issuer, iss=issuer.url + "/other")
    with pytest.raises(OidcError, match="issuer is not trusted"):
        await verify_id_token(token, [identity], jwks)
    assert issuer.requests == {}


async def test_token_signed_by_another_issuer(
    issuer: OidcIssuer, jwks: JwksCache, identity: OidcIdentity
) -> None:
    # The other issuer names ours in iss, and even reuses our kid: our key decides.
    with OidcIssuer() as other:
        forged = other.mint(
            SUBJECT, AUDIENCE, CLAIMS, iss=issuer.url, kid=issuer.key().kid
        )
    with pytest.raises(OidcError, match="signature is invalid"):
        await verify_id_token(forged, [identity], jwks)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(
            {"sub": "repo:evil/app:ref:refs/heads/main"}, "matches no", id="sub"
        ),
        pytest.param(
            {"sub": "repo:acme/app:ref:refs/heads/dev"}, "matches no", id="ref"
        ),
        pytest.param(
            {"claims": {**CLAIMS, "repository_owner": "evil"}}, "matches no", id="claim"
        ),
        pytest.param(
            {"claims": {"workflow": "release"}}, "matches no", id="claim-missing"
        ),
        pytest.param({"claims": {**CLAIMS, "sub": None}}, "lacks the sub", id="no-sub"),
        pytest.param({"sub": 42}, "invalid ID token", id="sub-number"),
        pytest.param(
            {"claims": {**CLAIMS, "jti": 7}}, "invalid ID token", id="jti-number"
        ),
    ],
)
async def test_subject_and_claim_mismatch(
    issuer: OidcIssuer,
    jwks: JwksCache,
    identity: OidcIdentity,
    options: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(OidcError, match=message):
        await verify_id_token(mint(issuer, **options), [identity], jwks)


# -- signatures and algorithms ------------------------------------------------------


def tampered(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    new_payload = base64.urlsafe_b64encode(json.dumps({**claims, **changes}).encode())
    return f"{header}.{new_payload.rstrip(b'=').decode()}.{signature}"


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_tampered_payload(
    issuer: OidcIssuer, jwks: JwksCache, identity: OidcIdentity, alg: str
) -> None:
    token = tampered(
        mint(issuer, key=issuer.key(alg)), sub="repo:acme/other:ref:refs/heads/main"
    )
    with pytest.raises(OidcError, match="signature is invalid"):
        await verify_id_token(token, [identity], jwks)


async def test_foreign_key_with_a_published_kid(
    issuer: OidcIssuer, jwks: JwksCache, identity: OidcIdentity
) -> None:
    foreign = SigningKey.generate("RSA", kid=issuer.key().kid)
    with pytest.raises(OidcError, match="signature is invalid"):
        await verify_id_token(mint(issuer, key=foreign), [identity], jwks)


async def test_key_and_algorithm_must_agree(
    issuer: OidcIssuer, jwks: JwksCache, identity: OidcIdentity
) -> None:
    # An ES256 token naming the RSA key's kid must not be checked with that RSA key.
    token = mint(issuer, key=issuer.key("ES256"), kid=issuer.key("RS256").kid)
    with pytest.raises(OidcError, match="algorithm is not allowed"):
        await verify_id_token(token, [identity], jwks)


@pytest.mark.parametrize("alg", ["none", "HS256"])
async def test_unsafe_algorithms(
    issuer: OidcIssuer, jwks: JwksCache, identity: OidcIdentity, alg: str
) -> None:
    # HS256 is keyed with the issuer's real public key, as an attacker could do.
    for key in (issuer.key("RS256"), issuer.key("ES256")):
        with pytest.raises(OidcError, match="algorithm is not allowed"):
            await verify_id_token(mint(issuer, key=key, alg=alg), [identity], jwks)
    assert issuer.requests == {}


async def test_unusable_jwks_keys_are_skipped(
    issuer: OidcIssuer, http: httpx.AsyncClient, identity: OidcIdentity
) -> None:
    rsa_key, ec_key = issuer.key("RS256"), issuer.key("ES256")
    published = {
        "keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {**rsa_key.public_jwk(), "use": "enc"},
            {**ec_key.public_jwk(), "kid": None},
            {**rsa_key.public_jwk(), "alg": "RS512", "kid": "rs512"},
            {**rsa_key.public_jwk(), "alg": ["RS256"], "kid": "alg-list"},
            {**rsa_key.public_jwk(), "kty": ["RSA"], "kid": "kty-list"},
            {**rsa_key.public_jwk(), "n": 5, "kid": "bad-n"},
            {**rsa_key.private_jwk(), "kid": "private"},
            {**SigningKey.generate("EC").public_jwk(), "crv": "P-384", "kid": "p384"},
            "not a key",
            ec_key.public_jwk(),
        ]
    }
    jwks = JwksCache(http, min_refetch_interval=0)
    issuer.jwks_override = published
    assert await verify_id_token(mint(issuer, key=ec_key), [identity], jwks) is identity
    unusable = (
        "hmac",
        rsa_key.kid,
        "rs512",
        "alg-list",
        "kty-list",
        "bad-n",
        "private",
    )
    for kid in unusable:
        with pytest.raises(OidcError, match="signing key is unknown"):
            await verify_id_token(mint(issuer, key=rsa_key, kid=kid), [identity], jwks)


# -- key cache: refetch, rotation, TTL ----------------------------------------------


async def test_unknown_kid_refetches_once_then_fails(
    issuer: OidcIssuer, jwks: JwksCache, identity: OidcIdentity, clock: FakeClock
) -> None:
    await verify_id_token(mint(issuer), [identity], jwks)
    clock.advance(31)
    for _ in range(3):
        with pytest.raises(OidcError, match="signing key is unknown"):
            await verify_id_token(mint(issuer, kid="retired-2019"), [identity], jwks)
    assert jwks_fetches(issuer) == 2


async def test_unknown_kid_refetch_is_rate_limited(
    issuer: OidcIssuer, jwks: JwksCache, identity: OidcIdentity, clock: FakeClock
) -> None:
    await verify_id_token(mint(issuer), [identity], jwks)
    clock.advance(29)
    with pytest.raises(OidcError, match="signing key is unknown"):
        await verify_id_token(mint(issuer, kid="new"), [identity], jwks)
    assert jwks_fetches(issuer) == 1


async def test_key_rotation_is_picked_up(
    issuer: OidcIssuer, jwks: JwksCache, identity: OidcIdentity, clock: FakeClock
) -> None:
    old = issuer.key("RS256")
    await verify_id_token(mint(issuer, key=old), [identity], jwks)
    new = issuer.rotate("RSA")
    clock.advance(31)
    assert await verify_id_token(mint(issuer, key=new), [identity], jwks) is identity
    assert jwks_fetches(issuer) == 2
    # The refetch dropped the retired key at once.
    with pytest.raises(OidcError, match="signing key is unknown"):
        await verify_id_token(mint(issuer, key=old), [identity], jwks)
    assert jwks_fetches(issuer) == 2


async def test_keys_expire_after_the_ttl(
    issuer: OidcIssuer, jwks: JwksCache, identity: OidcIdentity, clock: FakeClock
) -> None:
    old = issuer.key("RS256")
    await verify_id_token(mint(issuer, key=old), [identity], jwks)
    issuer.rotate("RSA")
    clock.advance(599)
    assert await verify_id_token(mint(issuer, key=old), [identity], jwks) is identity
    clock.advance(1)
    with pytest.raises(OidcError, match="signing key is unknown"):
        await verify_id_token(mint(issuer, key=old), [identity], jwks)
    assert jwks_fetches(issuer) == 2


# -- misbehaving issuers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"issuer": "http://127.0.0.1:1"}, "different issuer", id="issuer"),
        pytest.param({"jwks_uri": None}, "no jwks_uri", id="no-jwks-uri"),
        pytest.param(
            {"jwks_uri": "http://keys.example/jwks"},
            "jwks_uri must use https",
            id="jwks-uri-http",
        ),
        pytest.param(
            {"jwks_uri": "http://127.0.0.1:1/jwks"},
            "cannot fetch the issuer's JWKS",
            id="jwks-uri-refused",
        ),
    ],
)
async def test_bad_discovery_document(
    issuer: OidcIssuer,
    jwks: JwksCache,
    identity: OidcIdentity,
    overrides: dict[str, Any],
    message: str,
) -> None:
    issuer.discovery_overrides = overrides
    with pytest.raises(OidcError, match=message):
        await verify_id_token(mint(issuer), [identity], jwks)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param({"keys": []}, "no usable keys", id="empty"),
        pytest.param({"keys": [{"kty": "RSA"}]}, "no usable keys", id="broken-key"),
        pytest.param(
            {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k"}]},
            "no usable keys",
            id="only-hmac",
        ),
        pytest.param({"keys": "nope"}, "no list of keys", id="keys-not-a-list"),
        pytest.param({}, "no list of keys", id="no-keys"),
    ],
)
async def test_bad_jwks(
    issuer: OidcIssuer,
    jwks: JwksCache,
    identity: OidcIdentity,
    document: dict[str, Any],
    message: str,
) -> None:
    issuer.jwks_override = document
    with pytest.raises(OidcError, match=message):
        await verify_id_token(mint(issuer), [identity], jwks)


async def test_failing_issuer_is_not_hammered(
    issuer: OidcIssuer, jwks: JwksCache, identity: OidcIdentity, clock: FakeClock
) -> None:
    issuer.jwks_status = 500
    with pytest.raises(OidcError, match="JWKS answered 500"):
        await verify_id_token(mint(issuer), [identity], jwks)
    issuer.jwks_status = 200
    clock.advance(10)
    with pytest.raises(OidcError, match="unavailable; retry later"):
        await verify_id_token(mint(issuer), [identity], jwks)
    assert jwks_fetches(issuer) == 1
    clock.advance(20)
    assert await verify_id_token(mint(issuer), [identity], jwks) is identity
    assert jwks_fetches(issuer) == 2


async def test_slow_issuer_times_out(
    issuer: OidcIssuer, http: httpx.AsyncClient, identity: OidcIdentity
) -> None:
    issuer.delay = 0.5
    jwks = JwksCache(http, timeout=0.1)
    with pytest.raises(OidcError, match="timed out"):
        await verify_id_token(mint(issuer), [identity], jwks)
    await anyio.sleep(0.5)  # let the server's handler finish before it stops


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"<html>", "not JSON", id="not-json"),
        pytest.param(b"[1, 2]", "not a JSON object", id="not-an-object"),
        pytest.param(b" " * (1024 * 1024 + 1), "too large", id="too-large"),
    ],
)
async def test_bad_documents(body: bytes, message: str) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(OidcError, match=message):
            await JwksCache(client).get_key("https://issuer.example", "k")


# -- transport rule -----------------------------------------------------------------


async def test_non_loopback_issuer_requires_https(issuer: OidcIssuer) -> None:
    requested: list[str] = []

    def not_found(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        return httpx.Response(404)

    async with httpx.AsyncClient(transport=httpx.MockTransport(not_found)) as client:
        jwks = JwksCache(client)
        plain = OidcIdentity("plain", "http://issuer.example", AUDIENCE, "*")
        token = mint(issuer, iss=plain.issuer)
        with pytest.raises(OidcError, match="issuer must use https"):
            await verify_id_token(token, [plain], jwks)
        assert requested == []

        secure = OidcIdentity("secure", "https://issuer.example", AUDIENCE, "*")
        token = mint(issuer, iss=secure.issuer)
        with pytest.raises(OidcError, match="discovery document answered 404"):
            await verify_id_token(token, [secure], jwks)
        assert requested == ["https://issuer.example/.well-known/openid-configuration"]


async def test_short_rsa_key_is_refused(
    issuer: OidcIssuer, jwks: JwksCache, identity: OidcIdentity
) -> None:
    short = SigningKey("short", "RS256", rsa.generate_private_key(65537, 1024))  # noqa: S505 - the point
    issuer.jwks_override = {"keys": [short.public_jwk()]}
    with pytest.warns(InsecureKeyLengthWarning):  # PyJWT signs, and says so
        token = mint(issuer, key=short)
    with pytest.raises(OidcError, match="signing key is unusable"):
        await verify_id_token(token, [identity], jwks)
