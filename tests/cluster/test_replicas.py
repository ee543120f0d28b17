"""Two replicas behind nginx on one PostgreSQL: routing, uploads across replicas,
caches invalidated across replicas, and stock skopeo through the load balancer."""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.cluster.conftest import REPLICAS, Cluster
from tests.cluster.registry import digest_of, make_image
from tests.interop.clients import ContainersEnv
from tests.interop.layouts import LayoutWriter, file_digest, read_layout_index
from tests.prerequisites import require

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

# A change made through one replica must show on the other within about a second
# (the cache refresh interval). The bound only keeps a broken build from hanging; the
# measured delay is printed.
PROPAGATION_BOUND = 10.0


def eventually(check: Callable[[], bool], what: str) -> float:
    """Seconds until ``check()`` holds, polled every 50 ms up to the bound."""
    started = time.monotonic()
    while time.monotonic() - started < PROPAGATION_BOUND:
        if check():
            elapsed = time.monotonic() - started
            print(f"{what}: {elapsed:.2f} s")
            return elapsed
        time.sleep(0.05)
    pytest.fail(f"{what}: not within {PROPAGATION_BOUND} s")


def test_consecutive_requests_land_on_different_replicas(cluster: Cluster) -> None:
    with httpx.Client(base_url=cluster.url, timeout=30) as http:
        answered = [http.get("/v2/").headers["x-cargohold-replica"] for _ in range(8)]
    assert set(answered) == set(REPLICAS)
    # Round robin: no replica answers twice in a row.
    assert all(a != b for a, b in itertools.pairwise(answered)), answered


def test_token_realm_and_locations_name_the_load_balancer(cluster: Cluster) -> None:
    with httpx.Client(base_url=cluster.url, timeout=30) as http:
        challenge = http.get("/v2/").headers["www-authenticate"]
    assert f'realm="{cluster.url}/token"' in challenge
    client = cluster.client()
    try:
        location = client.start_upload("cluster/locations")
    finally:
        client.close()
    assert location.startswith(("/v2/cluster/locations/", f"{cluster.url}/v2/"))


def test_chunked_upload_alternates_replicas(cluster: Cluster) -> None:
    client = cluster.client()
    data = make_image("chunked", 6 * 256 * 1024).layers[0]
    try:
        before = len(client.replicas)
        digest = client.push_blob("cluster/chunked", data, chunks=6)
        upload = client.replicas[before:]
        # POST, six PATCHes, PUT: round robin sends them to both replicas, in turn.
        patches = upload[-7:-1]
        assert set(patches) == set(REPLICAS), upload
        pulled = {client.get_blob("cluster/chunked", digest) for _ in range(2)}
    finally:
        client.close()
    assert pulled == {data}
    assert digest == digest_of(data)


def test_deleted_user_is_refused_by_the_other_replica(cluster: Cluster) -> None:
    one, two = (
        httpx.Client(base_url=cluster.replicas[r], timeout=30) for r in REPLICAS
    )
    try:
        created = one.post(
            "/api/v1/users",
            json={"name": "leaver", "password": "leaver-password-1"},
            auth=cluster.admin,
        )
        assert created.status_code == 201, created.text
        token = two.get(
            "/token",
            params={"service": "cargohold", "scope": "repository:x/y:pull"},
            auth=("leaver", "leaver-password-1"),
        ).json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert two.get("/v2/", headers=bearer).status_code == 200  # cached as active
        # A password changed through one replica: the other's remembered login (keyed
        # by the old password hash) no longer counts, at once.
        changed = one.put(
            "/api/v1/users/leaver/password",
            json={"password": "leaver-password-2"},
            auth=cluster.admin,
        )
        assert changed.status_code == 204, changed.text
        old_login = two.get(
            "/token",
            params={"service": "cargohold"},
            auth=("leaver", "leaver-password-1"),
        )
        assert old_login.status_code == 401
        assert one.delete("/api/v1/users/leaver", auth=cluster.admin).status_code == 204
        eventually(
            lambda: two.get("/v2/", headers=bearer).status_code == 401,
            "user deletion reached the other replica",
        )
    finally:
        one.close()
        two.close()


def test_revoked_pull_token_is_refused_by_the_other_replica(cluster: Cluster) -> None:
    one, two = (
        httpx.Client(base_url=cluster.replicas[r], timeout=30) for r in REPLICAS
    )
    try:
        assert (
            one.post("/api/v1/orgs", json={"name": "revokers"}, auth=cluster.admin)
        ).status_code == 201
        made = one.post(
            "/api/v1/orgs/revokers/tokens",
            json={"description": "ci"},
            auth=cluster.admin,
        )
        assert made.status_code == 201, made.text
        secret, token_id = made.json()["secret"], made.json()["id"]
        assert secret.startswith("chp_")
        token = two.get(
            "/token",
            params={"service": "cargohold", "scope": "repository:revokers/app:pull"},
            auth=("ci", secret),  # the secret names the token; any user name
        ).json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert two.get("/v2/", headers=bearer).status_code == 200
        revoked = one.delete(
            f"/api/v1/orgs/revokers/tokens/{token_id}", auth=cluster.admin
        )
        assert revoked.status_code == 204, revoked.text
        eventually(
            lambda: two.get("/v2/", headers=bearer).status_code == 401,
            "pull token revocation reached the other replica",
        )
    finally:
        one.close()
        two.close()


def test_rotated_signing_key_is_published_by_every_replica(cluster: Cluster) -> None:
    def kids(replica: str) -> set[str]:
        answer = httpx.get(f"{cluster.replicas[replica]}/token/jwks", timeout=30)
        return {key["kid"] for key in answer.json()["keys"]}

    before = kids("replica-2")
    printed = cluster.cli("keys", "rotate").stdout
    new = printed.split()[3].rstrip(";")  # "added signing key <kid>; ..."
    assert new not in before
    for replica in REPLICAS:

        def published(r: str = replica) -> bool:
            return new in kids(r)

        eventually(published, f"new key published by {replica}")


def test_skopeo_push_and_pull_through_the_load_balancer(
    cluster: Cluster, tmp_path: Path
) -> None:
    require("skopeo")
    host = cluster.url.removeprefix("http://")
    env = ContainersEnv(tmp_path / "containers", host)
    env.write()
    login = base64.b64encode(":".join(cluster.admin).encode()).decode()
    (tmp_path / "containers" / "auth.json").write_text(
        json.dumps({"auths": {host: {"auth": login}}})
    )
    writer = LayoutWriter(tmp_path / "layout")
    payload, diff = writer.add_random_layer("opt/payload.bin", 3 << 20)
    image = writer.add_image(
        {"hello.txt": b"hello from the cluster\n"}, extra_layers=((payload, diff),)
    )
    writer.tag(image.manifest, "v1")
    writer.close()
    remote = env.docker("cluster/skopeo", "v1")
    flags = ("--src-tls-verify=false", "--dest-tls-verify=false")
    env.run(env.skopeo("copy", "--quiet", *flags, f"oci:{writer.root}:v1", remote))
    out = tmp_path / "back"
    env.run(env.skopeo("copy", "--quiet", *flags, remote, f"oci:{out}:v1"))
    assert read_layout_index(out)["v1"].digest == image.manifest.digest
    for blob in (image.config, *image.layers):
        assert file_digest(out / "blobs" / "sha256" / blob.digest[7:]) == blob.digest


def test_replicas_share_one_truth(cluster: Cluster) -> None:
    """A push through one replica is visible at once through the other."""
    one, two = (cluster.client(cluster.replicas[r]) for r in REPLICAS)
    image = make_image("one-truth", 100_000)
    try:
        one.push_image("cluster/truth", "v1", image)
        assert two.pull_image("cluster/truth", "v1") == image
    finally:
        one.close()
        two.close()
