"""One replica vs two behind nginx, and PostgreSQL vs SQLite, as ratios (~60 s).

Starts ``scripts/cluster.sh`` (PostgreSQL, two replicas, nginx; moto S3 storage
unless ``CLUSTER_STORAGE=filesystem``) and, beside it, one ``cargohold serve`` on
SQLite with the same settings. Token auth everywhere (the clients' bearer token in
every request). Each pair is measured in alternating order for ``--rounds`` rounds;
the medians and their ratio are printed as markdown rows for docs/performance.md.

* manifest GET by tag (wrk, c=32): nginx with replica 2 stopped (one replica) vs nginx
  with both (two replicas);
* blob uploads (POST + PUT of 256 KiB, 8 client threads): the same two set-ups;
* manifest GET straight to one replica: on PostgreSQL (replica 1) vs on SQLite.

    .venv/bin/python bench/cluster.py [--rounds 2] [--seconds 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "cluster.sh"
REPO = "bench/app"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def environ(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARGOHOLD_")}
    return env | {
        "CLUSTER_DIR": str(state),
        "CLUSTER_PYTHON": sys.executable,
        "CARGOHOLD_LOG_LEVEL": "error",
        "CARGOHOLD_PULLS_ENABLED": "false",
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
        ),
    }


def cluster(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True,
        check=True, timeout=180,
    ).stdout  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def sqlite_server(env: dict[str, str], data: Path, password: str) -> Iterator[str]:
    port = free_port()
    server_env = env | {
        "CARGOHOLD_ADMIN_USER": "admin",
        "CARGOHOLD_ADMIN_PASSWORD": password,
        "CARGOHOLD_DATA_DIR": str(data),
        "CARGOHOLD_SERVER_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "cargohold", "serve"], env=server_env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit("the SQLite server did not start")
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)


def token(url: str, auth: tuple[str, str], actions: str) -> str:
    answer = httpx.get(
        f"{url}/token",
        params={"service": "cargohold", "scope": f"repository:{REPO}:{actions}"},
        auth=auth, timeout=30,
    )  # fmt: skip
    answer.raise_for_status()
    return str(answer.json()["token"])


def upload(http: httpx.Client, data: bytes) -> None:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    started = http.post(f"/v2/{REPO}/blobs/uploads/")
    started.raise_for_status()
    location = started.headers["location"]
    joiner = "&" if "?" in location else "?"
    done = http.put(f"{location}{joiner}digest={digest}", content=data)
    if done.status_code != 201:
        raise SystemExit(f"upload failed: {done.status_code} {done.text}")


def seed(url: str, auth: tuple[str, str]) -> None:
    bearer = {"Authorization": f"Bearer {token(url, auth, 'pull,push')}"}
    with httpx.Client(base_url=url, headers=bearer, timeout=60) as http:
        config = b'{"architecture":"amd64","os":"linux"}'
        layer = os.urandom(4096)
        for blob in (config, layer):
            upload(http, blob)

        def descriptor(data: bytes, media_type: str) -> dict[str, object]:
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            return {"mediaType": media_type, "digest": digest, "size": len(data)}

        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": descriptor(config, "application/vnd.oci.image.config.v1+json"),
            "layers": [descriptor(layer, "application/vnd.oci.image.layer.v1.tar")],
        }).encode()  # fmt: skip
        put = http.put(
            f"/v2/{REPO}/manifests/v1", content=manifest,
            headers={"Content-Type": OCI_MANIFEST},
        )  # fmt: skip
        put.raise_for_status()


def wrk_manifest(url: str, bearer: str, seconds: float) -> float:
    out = subprocess.run(
        ["wrk", "-t2", "-c32", f"-d{round(seconds)}s",
         "-H", f"Authorization: Bearer {bearer}", "-H", f"Accept: {OCI_MANIFEST}",
         f"{url}/v2/{REPO}/manifests/v1"],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    return float(found.group(1))


def uploads_per_second(
    url: str, bearer: str, seconds: float, threads: int = 8
) -> float:
    deadline = time.monotonic() + seconds
    counts = [0] * threads

    def work(n: int) -> None:
        headers = {"Authorization": f"Bearer {bearer}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            while time.monotonic() < deadline:
                upload(http, os.urandom(256 * 1024))
                counts[n] += 1

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(seconds + 120)
    return sum(counts) / (time.monotonic() - started)


def compare(
    rounds: int, first: Callable[[], float], second: Callable[[], float]
) -> tuple[float, float]:
    a: list[float] = []
    b: list[float] = []
    for n in range(rounds):
        order = [(first, a), (second, b)]
        for measure, into in order if n % 2 == 0 else reversed(order):
            into.append(measure())
    return statistics.median(a), statistics.median(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cargohold-bench-cluster-") as tmp:
        env = environ(Path(tmp) / "cluster")
        values = dict(
            line.split("=", 1)
            for line in cluster(env, "up").splitlines()
            if "=" in line
        )
        try:
            run(env, values, Path(tmp), args.rounds, args.seconds)
        finally:
            cluster(env, "down")


def run(
    env: dict[str, str], values: dict[str, str], tmp: Path, rounds: int, seconds: float
) -> None:
    lb, auth = values["URL"], (values["ADMIN_USER"], values["ADMIN_PASSWORD"])
    seed(lb, auth)
    pull, push = token(lb, auth, "pull"), token(lb, auth, "pull,push")

    def one_replica(measure: Callable[[], float]) -> Callable[[], float]:
        def run_it() -> float:
            cluster(env, "stop", "2")
            try:
                return measure()
            finally:
                cluster(env, "restart", "2")

        return run_it

    rows = []
    one, two = compare(
        rounds,
        one_replica(lambda: wrk_manifest(lb, pull, seconds)),
        lambda: wrk_manifest(lb, pull, seconds),
    )
    rows.append(
        ("manifest GET through nginx, req/s", "1 replica", one, "2 replicas", two)
    )
    one, two = compare(
        rounds,
        one_replica(lambda: uploads_per_second(lb, push, seconds)),
        lambda: uploads_per_second(lb, push, seconds),
    )
    rows.append(
        ("256 KiB blob uploads through nginx, /s", "1 replica", one, "2 replicas", two)
    )
    with sqlite_server(env, tmp / "sqlite", auth[1]) as lite:
        seed(lite, auth)
        lite_pull = token(lite, auth, "pull")
        replica = values["REPLICA_1"]
        sqlite, postgres = compare(
            rounds,
            lambda: wrk_manifest(lite, lite_pull, seconds),
            lambda: wrk_manifest(replica, pull, seconds),
        )
    rows.append(
        ("manifest GET, one server, req/s", "SQLite", sqlite, "PostgreSQL", postgres)
    )
    print("| measurement | A | median A | B | median B | B/A |")
    print("|---|---|---|---|---|---|")
    for what, a_name, a, b_name, b in rows:
        print(f"| {what} | {a_name} | {a:.0f} | {b_name} | {b:.0f} | {b / a:.2f}x |")


if __name__ == "__main__":
    main()
