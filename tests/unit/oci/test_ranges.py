"""``cargohold.oci.ranges``: upload ``Content-Range`` and ``Range`` headers."""

from __future__ import annotations

import pytest

from cargohold.oci.errors import BlobUploadInvalid, RangeInvalid
from cargohold.oci.ranges import parse_content_range, upload_range


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
