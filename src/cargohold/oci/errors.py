"""The OCI Distribution error codes, one class each.

The hierarchy::

    RegistryError                     code, message, status (ClassVars) + detail
    ├── BlobUnknown                   404 BLOB_UNKNOWN
    ├── BlobUploadInvalid             400 BLOB_UPLOAD_INVALID
    ├── BlobUploadUnknown             404 BLOB_UPLOAD_UNKNOWN
    ├── DigestInvalid                 400 DIGEST_INVALID
    ├── ManifestBlobUnknown           400 MANIFEST_BLOB_UNKNOWN
    ├── ManifestInvalid               400 MANIFEST_INVALID
    ├── ManifestUnknown               404 MANIFEST_UNKNOWN
    ├── NameInvalid                   400 NAME_INVALID
    ├── NameUnknown                   404 NAME_UNKNOWN
    ├── SizeInvalid                   400 SIZE_INVALID
    ├── Unauthorized                  401 UNAUTHORIZED
    ├── Denied                        403 DENIED
    ├── Unsupported                   415 UNSUPPORTED
    ├── TooManyRequests               429 TOOMANYREQUESTS
    ├── RangeInvalid                  416 (BLOB_UPLOAD_INVALID, with the current Range)
    ├── ManifestTooLarge              413 (SIZE_INVALID)
    ├── BlobTooLarge                  413 (SIZE_INVALID)
    ├── MethodNotAllowed              405 UNSUPPORTED
    └── PaginationInvalid             400 PAGINATION_NUMBER_INVALID

Codes and statuses follow the spec's error-code table (spec.md, "Error Codes"). The HTTP
layer renders any of them as ``{"errors": [{"code", "message", "detail"}]}``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class RegistryError(Exception):
    """Base of every error a client may see; rendered as OCI error JSON."""

    code: ClassVar[str] = "UNKNOWN"
    message: ClassVar[str] = "unknown error"
    status: ClassVar[int] = 500

    def __init__(
        self, detail: Any = None, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail if detail is not None else self.message)
        self.detail = detail
        self.headers = dict(headers or {})

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return {"errors": [entry]}


class BlobUnknown(RegistryError):
    code = "BLOB_UNKNOWN"
    message = "blob unknown to registry"
    status = 404


class BlobUploadInvalid(RegistryError):
    code = "BLOB_UPLOAD_INVALID"
    message = "blob upload invalid"
    status = 400


class BlobUploadUnknown(RegistryError):
    code = "BLOB_UPLOAD_UNKNOWN"
    message = "blob upload unknown to registry"
    status = 404


class DigestInvalid(RegistryError):
    code = "DIGEST_INVALID"
    message = "provided digest did not match uploaded content"
    status = 400


class ManifestBlobUnknown(RegistryError):
    code = "MANIFEST_BLOB_UNKNOWN"
    message = "manifest references a manifest or blob unknown to registry"
    status = 400


class ManifestInvalid(RegistryError):
    code = "MANIFEST_INVALID"
    message = "manifest invalid"
    status = 400


class ManifestUnknown(RegistryError):
    code = "MANIFEST_UNKNOWN"
    message = "manifest unknown to registry"
    status = 404


class NameInvalid(RegistryError):
    code = "NAME_INVALID"
    message = "invalid repository name"
    status = 400


class NameUnknown(RegistryError):
    code = "NAME_UNKNOWN"
    message = "repository name not known to registry"
    status = 404


class SizeInvalid(RegistryError):
    code = "SIZE_INVALID"
    message = "provided length did not match content length"
    status = 400


class Unauthorized(RegistryError):
    code = "UNAUTHORIZED"
    message = "authentication required"
    status = 401


class Denied(RegistryError):
    code = "DENIED"
    message = "requested access to the resource is denied"
    status = 403


class Unsupported(RegistryError):
    code = "UNSUPPORTED"
    message = "the operation is unsupported"
    status = 415


class TooManyRequests(RegistryError):
    code = "TOOMANYREQUESTS"
    message = "too many requests"
    status = 429


class RangeInvalid(BlobUploadInvalid):
    """A chunk that does not start where the upload stands (spec: 416)."""

    message = "requested range not satisfiable"
    status = 416


class ManifestTooLarge(SizeInvalid):
    message = "manifest exceeds the size limit"
    status = 413


class BlobTooLarge(SizeInvalid):
    """More bytes than the registry accepts for one blob, or than it has room for."""

    message = "blob exceeds the size the registry accepts"
    status = 413


class MethodNotAllowed(Unsupported):
    message = "the method is not allowed on this resource"
    status = 405


class PaginationInvalid(RegistryError):
    code = "PAGINATION_NUMBER_INVALID"
    message = "invalid number of results requested"
    status = 400
