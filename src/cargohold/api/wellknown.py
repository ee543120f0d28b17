"""The registry's public signing keys, for anyone (no auth: they are public).

* ``/.well-known/cargohold/cosign.pub``: the active ECDSA P-256 key (PEM), what
  ``cosign verify --key`` and policies take.
* ``/.well-known/cargohold/signing-key.asc``: every OpenPGP key, active and retired
  (armored; ``gpg --import`` reads them all), for a ``signedBy`` policy.
* ``/.well-known/cargohold/keys.json``: every key of both kinds with its state.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cargohold.api.state import services
from cargohold.registry.admin import NotFound
from cargohold.registry.signing.keys import ECDSA_P256, OPENPGP

_PREFIX = "/.well-known/cargohold"


async def cosign_pub(request: Request) -> Response:
    keys = await services(request).signing.public_keys()
    active = [k for k in keys if k.kind == ECDSA_P256 and k.state == "active"]
    if not active:
        raise NotFound("no active ECDSA signing key")
    return Response(active[-1].public, media_type="application/x-pem-file")


async def signing_key_asc(request: Request) -> Response:
    keys = await services(request).signing.public_keys()
    armored = "".join(k.public for k in keys if k.kind == OPENPGP)
    return Response(armored, media_type="application/pgp-keys")


async def keys_json(request: Request) -> Response:
    keys = await services(request).signing.public_keys()
    return JSONResponse(
        {
            "keys": [
                {
                    "key_id": k.key_id,
                    "kind": k.kind,
                    "state": k.state,
                    "created_at": k.created_at,
                    "public": k.public,
                }
                for k in keys
            ]
        }
    )


routes = [
    Route(f"{_PREFIX}/cosign.pub", cosign_pub, methods=["GET"], name="cosign_pub"),
    Route(
        f"{_PREFIX}/signing-key.asc",
        signing_key_asc,
        methods=["GET"],
        name="signing_key_asc",
    ),
    Route(f"{_PREFIX}/keys.json", keys_json, methods=["GET"], name="signing_keys"),
]
