"""Small helpers shared by the ``/v2`` handlers: parameters and service lookup."""

from __future__ import annotations

from starlette.requests import Request

from cargohold.oci.digest import Digest
from cargohold.oci.errors import SizeInvalid
from cargohold.oci.names import RepositoryName


def repository(request: Request) -> RepositoryName:
    return RepositoryName.parse(request.path_params["name"])


def path_digest(request: Request) -> Digest:
    return Digest.parse(request.path_params["digest"])


def content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not value.isdigit():
        raise SizeInvalid(f"malformed Content-Length: {value[:40]!r}")
    return int(value)


def paginated_link(path: str, *, last: str, limit: int) -> str:
    return f'<{path}?last={last}&n={limit}>; rel="next"'
