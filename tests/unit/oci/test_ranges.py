"""``cargohold.oci.ranges``: upload ``Content-Range`` and ``Range`` headers."""

from __future__ import annotations

import pytest

from cargohold.oci.errors import BlobUploadInvalid, RangeInvalid
from cargohold.oci.ranges import (
    Unsatisfiable,
    parse_byte_ranges,
    parse_content_range,
    upload_range,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0-0", (0, 0)),
        ("0-9", (0, 9)),
        ("5-5", (5, 5)),
        ("10-19", (10, 19)),
        ("bytes=0-9", (0, 9)),
        ("bytes 0-9", (0, 9)),
        ("0-9/10", (0, 9)),
        ("0-9/*", (0, 9)),
        ("bytes 100-199/1000", (100, 199)),
        ("  0-9  ", (0, 9)),
        ("0-18446744073709551616", (0, 18446744073709551616)),
    ],
)
def test_parse_content_range(value: str, expected: tuple[int, int]) -> None:
    assert parse_content_range(value) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "malformed"),
        ("0", "malformed"),
        ("0-", "malformed"),
        ("-9", "malformed"),
        ("a-b", "malformed"),
        ("0-9-10", "malformed"),
        ("0 - 9", "malformed"),
        ("bytes:0-9", "malformed"),
        ("bytes=0-9/abc", "malformed"),
        ("bytes=0-9/", "malformed"),
        ("items=0-9", "malformed"),
        ("-1-9", "malformed"),
        ("0-9,10-19", "malformed"),
        ("9-0", "end before start"),
        ("bytes=10-9", "end before start"),
    ],
)
def test_parse_content_range_rejects(value: str, problem: str) -> None:
    with pytest.raises(RangeInvalid) as caught:
        parse_content_range(value)
    assert problem in caught.value.detail


def test_range_invalid_is_a_416_blob_upload_invalid() -> None:
    assert issubclass(RangeInvalid, BlobUploadInvalid)
    assert (RangeInvalid.code, RangeInvalid.status) == ("BLOB_UPLOAD_INVALID", 416)


@pytest.mark.parametrize(
    ("size", "expected"), [(0, "0-0"), (1, "0-0"), (2, "0-1"), (1024, "0-1023")]
)
def test_upload_range(size: int, expected: str) -> None:
    assert upload_range(size) == expected


def test_upload_progress_headers() -> None:
    from cargohold.oci.ranges import upload_progress_headers

    assert upload_progress_headers("a/b", "f" * 32, 10) == {
        "Location": f"/v2/a/b/blobs/uploads/{'f' * 32}",
        "Range": "0-9",
        "Docker-Upload-UUID": "f" * 32,
    }


@pytest.mark.parametrize(
    "value",
    [
        "0-" + "9" * 5000,  # int() refuses more than 4,300 digits
        "\u0660-\u0663",  # Arabic-Indic digits, which int() accepts
        "0-" + "9" * 31,
    ],
)
def test_parse_content_range_rejects_what_int_would_mangle(value: str) -> None:
    with pytest.raises(RangeInvalid):
        parse_content_range(value)


# --- Range on blob reads (RFC 9110 section 14) ----------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bytes=0-0", [(0, 1)]),
        ("bytes=0-9", [(0, 10)]),
        ("bytes=10-", [(10, 100)]),
        ("bytes=90-200", [(90, 100)]),  # last-pos past the end is clamped
        ("bytes=-5", [(95, 100)]),
        ("bytes=-500", [(0, 100)]),
        ("BYTES = 0-9", [(0, 10)]),  # the unit is case-insensitive
        ("bytes= 0-9 , 20-29 ", [(0, 10), (20, 30)]),
        ("bytes=20-29,0-9", [(0, 10), (20, 30)]),  # sorted
        ("bytes=0-9,5-14,15-19", [(0, 20)]),  # overlapping and adjacent merge
        ("bytes=0-9,,", [(0, 10)]),  # empty list elements are allowed
        ("bytes=0-9,200-", [(0, 10)]),  # an unsatisfiable spec among others
        ("bytes=0-" + "9" * 5000, [(0, 100)]),
    ],
)
def test_parse_byte_ranges(value: str, expected: list[tuple[int, int]]) -> None:
    assert parse_byte_ranges(value, 100) == expected


@pytest.mark.parametrize(
    "value",
    [
        "items=0-1",  # unknown unit
        "bytes",
        "bytes=",
        "bytes=,",
        "bytes=abc",
        "bytes=5-1",  # last-pos before first-pos: an invalid range set
        "bytes=-5-",
        "bytes=--5",
        "bytes=0-9,5-1",  # one invalid spec invalidates the set
        "bytes=+1-2",
        "bytes=1_0-20",
        "bytes=\u0661-\u0662",
        "bytes=0x10-",
        "bytes=1 - 2",
        "bytes=" + ",".join(f"{i}-{i}" for i in range(0, 202, 2)),  # 101 ranges
    ],
)
def test_parse_byte_ranges_ignores(value: str) -> None:
    assert parse_byte_ranges(value, 100) is None


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("bytes=100-", 100),
        ("bytes=1000000-", 100),
        ("bytes=" + "9" * 5000 + "-", 100),
        ("bytes=-0", 100),
        ("bytes=0-", 0),
        ("bytes=-5", 0),
        ("bytes=100-,200-300", 100),
    ],
)
def test_parse_byte_ranges_unsatisfiable(value: str, size: int) -> None:
    assert parse_byte_ranges(value, size) == Unsatisfiable(size)
