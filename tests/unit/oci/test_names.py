"""``cargohold.oci.names``: repository names, tags and the ``n`` page size."""

from __future__ import annotations

import pytest

from cargohold.oci.errors import ManifestInvalid, NameInvalid, PaginationInvalid
from cargohold.oci.names import (
    MAX_NAME_LENGTH,
    ManifestReferenceInvalid,
    RepositoryName,
    Tag,
    is_tag,
    page_size,
)


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "0",
        "alpine",
        "library/alpine",
        "a/b/c/d/e",
        "my-org/my-team/my-image",
        "a.b",
        "a_b",
        "a__b",
        "a-b",
        "a--b",
        "a---------b",
        "v1.2.3/x_y__z--w",
        "a" * MAX_NAME_LENGTH,
        "/".join(["ab"] * 85),  # 254 characters of nesting
    ],
)
def test_repository_name_accepts(name: str) -> None:
    assert RepositoryName.parse(name).value == name
    assert str(RepositoryName.parse(name)) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "A",
        "Library/alpine",
        "library/Alpine",
        "../x",
        "a/../b",
        "..",
        ".",
        "./a",
        "a//b",
        "/a",
        "a/",
        "a___b",  # only one or two underscores separate
        "a..b",
        "a._b",
        "a-_b",
        ".a",
        "a.",
        "-a",
        "a-",
        "_a",
        "a_",
        "a b",
        "a:b",
        "a@b",
        "a\\b",
        "é",
        "a\x00",
    ],
)
def test_repository_name_rejects(name: str) -> None:
    with pytest.raises(NameInvalid, match="invalid repository name"):
        RepositoryName.parse(name)


@pytest.mark.parametrize(
    "name", ["a" * (MAX_NAME_LENGTH + 1), "/".join(["abc"] * 65), "A" * 1000]
)
def test_repository_name_too_long(name: str) -> None:
    assert len(name) > MAX_NAME_LENGTH
    with pytest.raises(NameInvalid, match="longer than 255"):
        RepositoryName.parse(name)


def test_repository_name_rejects_trailing_newline() -> None:
    with pytest.raises(NameInvalid):
        RepositoryName.parse("library/alpine\n")


@pytest.mark.parametrize(
    ("name", "namespace"),
    [("alpine", "alpine"), ("library/alpine", "library"), ("a/b/c", "a")],
)
def test_namespace(name: str, namespace: str) -> None:
    assert RepositoryName.parse(name).namespace == namespace


TAGS_OK = [
    "latest",
    "v1",
    "v1.2.3",
    "1.0-rc.1",
    "_private",
    "UPPER",
    "sha256-" + "a" * 64 + ".sig",  # cosign signature tag
    "a" * 128,
    "0",
]
TAGS_BAD = [
    "",
    ".hidden",
    "-dash",
    "a" * 129,
    "a/b",
    "a:b",
    "a+b",
    "a@b",
    "sha256:" + "a" * 64,  # a digest is not a tag
    "tag with space",
    "é",
]


@pytest.mark.parametrize("text", TAGS_OK)
def test_tag_accepts(text: str) -> None:
    assert Tag.parse(text).value == text
    assert str(Tag.parse(text)) == text
    assert is_tag(text)


@pytest.mark.parametrize("text", TAGS_BAD)
def test_tag_rejects(text: str) -> None:
    assert not is_tag(text)
    with pytest.raises(ManifestReferenceInvalid) as caught:
        Tag.parse(text)
    assert isinstance(caught.value, ManifestInvalid)
    assert caught.value.code == "MANIFEST_INVALID"
    assert str(caught.value.detail).startswith("invalid tag")


def test_tag_error_detail_is_truncated() -> None:
    with pytest.raises(ManifestReferenceInvalid) as caught:
        Tag.parse("!" * 10_000)
    assert len(caught.value.detail) < 250


def test_tag_rejects_trailing_newline() -> None:
    assert not is_tag("latest\n")


@pytest.mark.parametrize(
    ("text", "maximum", "expected"),
    [
        (None, 100, None),
        ("", 100, None),
        ("0", 100, 0),
        ("1", 100, 1),
        ("100", 100, 100),
        ("101", 100, 100),
        ("99999999999999999999", 1000, 1000),
        ("007", 100, 7),
    ],
)
def test_page_size(text: str | None, maximum: int, expected: int | None) -> None:
    assert page_size(text, maximum=maximum) == expected


@pytest.mark.parametrize("text", ["-1", "abc", "1.5", " 1", "1 ", "+1", "1e3", "0x10"])
def test_page_size_rejects(text: str) -> None:
    with pytest.raises(PaginationInvalid, match="non-negative integer"):
        page_size(text, maximum=100)


def test_page_size_rejects_unicode_digits() -> None:
    with pytest.raises(PaginationInvalid):
        page_size("²", maximum=100)
