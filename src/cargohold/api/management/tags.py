"""``/repositories/{name}/tags/{tag}/history``: every move of a tag."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cargohold.api.management import views
from cargohold.api.management.common import reply
from cargohold.api.state import services
from cargohold.oci.errors import ManifestInvalid, NameInvalid
from cargohold.oci.names import RepositoryName, Tag
from cargohold.registry.admin import InvalidRequest

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from cargohold.auth.policy import Principal


async def tag_history(request: Request, actor: Principal) -> Response:
    try:
        repository = RepositoryName.parse(request.path_params["name"])
        tag = Tag.parse(request.path_params["tag"])
    except (NameInvalid, ManifestInvalid) as exc:
        raise InvalidRequest(str(exc.detail)) from None
    moves = await services(request).tag_history.history(actor, repository, tag)
    return reply({"history": [views.tag_move(m) for m in moves]})
