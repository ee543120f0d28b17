"""Every answer names the replica that gave it (``X-Cargohold-Replica``)."""

from __future__ import annotations

import socket

from tests.apptypes import MakeClient


async def test_every_answer_names_the_configured_replica(
    make_client: MakeClient,
) -> None:
    client = await make_client(server={"replica_id": "replica-a"})
    for path in ("/v2/", "/healthz", "/nothing", "/v2/a/manifests/latest"):
        response = await client.get(path)
        assert response.headers["x-cargohold-replica"] == "replica-a", path


async def test_the_default_name_is_host_and_port(make_client: MakeClient) -> None:
    client = await make_client(server={"port": 5123})
    response = await client.get("/v2/")
    assert response.headers["x-cargohold-replica"] == f"{socket.gethostname()}-5123"
