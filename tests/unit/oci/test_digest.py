"""``cargohold.oci.digest``: parsing, computing and printing digests."""

from __future__ import annotations

import hashlib

import pytest

from cargohold.oci.digest import Digest
from cargohold.oci.errors import DigestInvalid, RegistryError

SHA256_EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
SHA512_EMPTY = hashlib.sha512(b"").hexdigest()
HEX64 = "a" * 64


@pytest.mark.parametrize(
    ("text", "algorithm", "hex_"),
    [
        (f"sha256:{SHA256_EMPTY}", "sha256", SHA256_EMPTY),
        (f"sha512:{SHA512_EMPTY}", "sha512", SHA512_EMPTY),
        (f"sha256:{'0123456789abcdef' * 4}", "sha256", "0123456789abcdef" * 4),
    ],
)
def test_parse_accepts_registered_algorithms(
    text: str, algorithm: str, hex_: str
) -> None:
    digest = Digest.parse(text)
    assert (digest.algorithm, digest.hex) == (algorithm, hex_)
    assert str(digest) == text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "malformed digest"),
        ("sha256", "malformed digest"),
        ("sha256:", "malformed digest"),
        (f":{HEX64}", "malformed digest"),
        (HEX64, "malformed digest"),
        (f"SHA256:{HEX64}", "malformed digest"),  # algorithms are lower case
        (f"sha256::{HEX64}", "malformed digest"),
        (f"sha256:{HEX64[:-1]}!", "malformed digest"),
        (f"sha256 :{HEX64}", "malformed digest"),
        (f" sha256:{HEX64}", "malformed digest"),
        (f"sha256:{HEX64} ", "malformed digest"),
        (f"-sha256:{HEX64}", "malformed digest"),
        (f"sha256:{'A' * 64}", "malformed sha256 digest"),  # upper-case hex
        (f"sha256:{'a' * 63}", "malformed sha256 digest"),
        (f"sha256:{'a' * 65}", "malformed sha256 digest"),
        (f"sha256:{'g' * 64}", "malformed sha256 digest"),
        (f"sha256:{'a' * 62}==", "malformed sha256 digest"),
        (f"sha256:{HEX64}\n", "malformed digest"),
        (f"sha512:{HEX64}", "malformed sha512 digest"),
        (f"sha512:{'F' * 128}", "malformed sha512 digest"),
        (f"sha384:{'a' * 96}", "unsupported digest algorithm"),
        (f"md5:{'a' * 32}", "unsupported digest algorithm"),
        (f"sha256+b64u:{HEX64}", "unsupported digest algorithm"),
        (f"multihash+base58:{HEX64}", "unsupported digest algorithm"),
    ],
)
def test_parse_rejects(text: str, problem: str) -> None:
    with pytest.raises(DigestInvalid) as caught:
        Digest.parse(text)
    assert str(caught.value.detail).startswith(problem)


def test_parse_truncates_huge_input_in_the_detail() -> None:
    with pytest.raises(DigestInvalid) as caught:
        Digest.parse("x" * 10_000)
    assert len(caught.value.detail) < 300


def test_digest_invalid_is_a_registry_error() -> None:
    assert issubclass(DigestInvalid, RegistryError)
    assert (DigestInvalid.code, DigestInvalid.status) == ("DIGEST_INVALID", 400)


@pytest.mark.parametrize(
    ("data", "algorithm"),
    [(b"", "sha256"), (b"hello", "sha256"), (b"", "sha512"), (b"hello", "sha512")],
)
def test_of_hashes_data(data: bytes, algorithm: str) -> None:
    digest = Digest.of(data, algorithm)
    assert digest == Digest(algorithm, hashlib.new(algorithm, data).hexdigest())
    assert Digest.parse(str(digest)) == digest


def test_of_defaults_to_sha256() -> None:
    assert str(Digest.of(b"")) == f"sha256:{SHA256_EMPTY}"


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
def test_hasher_is_fresh_and_of_the_digest_algorithm(algorithm: str) -> None:
    digest = Digest.of(b"abc", algorithm)
    first = digest.hasher()
    first.update(b"abc")
    assert first.hexdigest() == digest.hex
    assert digest.hasher().hexdigest() == Digest.of(b"", algorithm).hex


def test_supported_algorithms() -> None:
    assert Digest.SUPPORTED == ("sha256", "sha512")


def test_digests_are_frozen_hashable_values() -> None:
    a = Digest.parse(f"sha256:{SHA256_EMPTY}")
    b = Digest.of(b"")
    assert a == b
    assert {a: 1}[b] == 1
    with pytest.raises(AttributeError):
        a.hex = HEX64  # type: ignore[misc]
