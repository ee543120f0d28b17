"""``cargohold.oci.errors``: one class per spec error code, rendered as OCI JSON."""

from __future__ import annotations

import pytest

from cargohold.oci import errors as e

# class, code, status, parent (spec.md "Error Codes"; 405/413/416 reuse a spec code)
TABLE: list[tuple[type[e.RegistryError], str, int, type[e.RegistryError]]] = [
    (e.BlobUnknown, "BLOB_UNKNOWN", 404, e.RegistryError),
    (e.BlobUploadInvalid, "BLOB_UPLOAD_INVALID", 400, e.RegistryError),
    (e.BlobUploadUnknown, "BLOB_UPLOAD_UNKNOWN", 404, e.RegistryError),
    (e.DigestInvalid, "DIGEST_INVALID", 400, e.RegistryError),
    (e.ManifestBlobUnknown, "MANIFEST_BLOB_UNKNOWN", 400, e.RegistryError),
    (e.ManifestInvalid, "MANIFEST_INVALID", 400, e.RegistryError),
    (e.ManifestUnknown, "MANIFEST_UNKNOWN", 404, e.RegistryError),
    (e.NameInvalid, "NAME_INVALID", 400, e.RegistryError),
    (e.NameUnknown, "NAME_UNKNOWN", 404, e.RegistryError),
    (e.SizeInvalid, "SIZE_INVALID", 400, e.RegistryError),
    (e.Unauthorized, "UNAUTHORIZED", 401, e.RegistryError),
    (e.Denied, "DENIED", 403, e.RegistryError),
    (e.Unsupported, "UNSUPPORTED", 415, e.RegistryError),
    (e.TooManyRequests, "TOOMANYREQUESTS", 429, e.RegistryError),
    (e.RangeInvalid, "BLOB_UPLOAD_INVALID", 416, e.BlobUploadInvalid),
    (e.ManifestTooLarge, "SIZE_INVALID", 413, e.SizeInvalid),
    (e.BlobTooLarge, "SIZE_INVALID", 413, e.SizeInvalid),
    (e.MethodNotAllowed, "UNSUPPORTED", 405, e.Unsupported),
    (e.PaginationInvalid, "PAGINATION_NUMBER_INVALID", 400, e.RegistryError),
]


@pytest.mark.parametrize(("cls", "code", "status", "parent"), TABLE)
def test_code_status_and_parent(
    cls: type[e.RegistryError], code: str, status: int, parent: type[e.RegistryError]
) -> None:
    assert (cls.code, cls.status) == (code, status)
    assert cls.__bases__ == (parent,)
    assert cls.message
    assert cls.message != e.RegistryError.message


def test_every_error_class_is_in_the_table() -> None:
    defined = {
        obj
        for obj in vars(e).values()
        if isinstance(obj, type)
        and issubclass(obj, e.RegistryError)
        and obj is not e.RegistryError
    }
    assert defined == {row[0] for row in TABLE}


def test_every_error_class_is_in_the_docstring_tree() -> None:
    assert e.__doc__ is not None
    for cls, *_ in TABLE:
        assert f"── {cls.__name__} " in e.__doc__


def test_base_defaults() -> None:
    error = e.RegistryError()
    assert (error.code, error.status, error.message) == (
        "UNKNOWN",
        500,
        "unknown error",
    )
    assert error.detail is None
    assert error.headers == {}
    assert str(error) == "unknown error"
    assert error.to_json() == {
        "errors": [{"code": "UNKNOWN", "message": "unknown error"}]
    }


@pytest.mark.parametrize(
    "detail", ["sha256:abc", {"digest": "sha256:abc"}, ["a", "b"], 0, "", False]
)
def test_detail_is_rendered_whenever_given(detail: object) -> None:
    error = e.BlobUnknown(detail)
    assert error.detail == detail
    assert error.to_json() == {
        "errors": [
            {
                "code": "BLOB_UNKNOWN",
                "message": "blob unknown to registry",
                "detail": detail,
            }
        ]
    }


def test_str_is_the_detail_or_the_message() -> None:
    assert str(e.NameUnknown("library/alpine")) == "library/alpine"
    assert str(e.NameUnknown()) == "repository name not known to registry"


def test_headers_are_copied() -> None:
    headers = {"Range": "0-9"}
    error = e.RangeInvalid("out of order", headers=headers)
    headers["Range"] = "changed"
    assert error.headers == {"Range": "0-9"}


def test_errors_are_raisable_and_catchable_by_base() -> None:
    with pytest.raises(e.RegistryError) as caught:
        raise e.Denied("no")
    assert caught.value.status == 403
