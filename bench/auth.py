"""Benchmark token auth on cargohold: issuance rate, and what auth costs the hot path.

Two cargohold servers run side by side: one with authentication off, one with token
auth. Each is seeded with the same image. In alternating rounds:

* manifest GET by tag at c=64 (wrk): unauthenticated on the first, with a bearer token
  on the second (the target: authenticated >= 0.9x unauthenticated req/s);
* token issuance at c=16 (wrk) on the second: anonymous, with a pull token (HTTP Basic,
  SHA-256 check), and with a user's password (HTTP Basic, argon2id check).

    python bench/auth.py [--rounds N] [--seconds S]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import statistics
import tempfile
from pathlib import Path

import httpx
import loads
import servers

ADMIN, PASSWORD = "bench", "bench-password-123"
REPO = "bench/app"
TAG = "latest"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _push(base: str, headers: dict[str, str]) -> None:
    config, layer = b'{"architecture":"amd64","os":"linux"}', b"layer" * 1000
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for blob in (config, layer):
            response = client.post(
                f"/v2/{REPO}/blobs/uploads/",
                params={"digest": _digest(blob)},
                content=blob,
            )
            response.raise_for_status()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": _digest(config),
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": _digest(layer),
                        "size": len(layer),
                    }
                ],
            }
        ).encode()
        client.put(
            f"/v2/{REPO}/manifests/{TAG}",
            content=manifest,
            headers={"Content-Type": MANIFEST},
        ).raise_for_status()


def _token(base: str, scope: str, auth: tuple[str, str]) -> str:
    response = httpx.get(
        f"{base}/token",
        params={"service": "cargohold", "scope": scope},
        auth=auth,
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["token"])


def _basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def _pull_token(base: str) -> str:
    with httpx.Client(base_url=base, auth=(ADMIN, PASSWORD), timeout=30) as client:
        client.post("/api/v1/orgs", json={"name": "bench"}).raise_for_status()
        created = client.post(
            "/api/v1/orgs/bench/tokens", json={"description": "bench"}
        )
        created.raise_for_status()
        return str(created.json()["secret"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args()
    python = servers.default_cargohold_python()
    quiet = {"CARGOHOLD_LOG_LEVEL": "error"}
    open_ = servers.cargohold_contender(python, [], quiet)
    secured = servers.cargohold_contender(
        python,
        [],
        quiet
        | {
            "CARGOHOLD_AUTH_MODE": "token",
            "CARGOHOLD_AUTH_TOKEN_TTL_SECONDS": "3600",
            "CARGOHOLD_ADMIN_USER": ADMIN,
            "CARGOHOLD_ADMIN_PASSWORD": PASSWORD,
        },
    )
    samples: dict[str, list[loads.RequestSample]] = {}
    with tempfile.TemporaryDirectory(prefix="cargohold-bench-auth-") as tmp:
        root = Path(tmp)
        (root / "open").mkdir()
        (root / "secured").mkdir()
        with (
            servers.RunningServer(open_, root / "open") as plain,
            servers.RunningServer(secured, root / "secured") as auth,
        ):
            _push(plain.base_url, {})
            admin_push = _token(
                auth.base_url, f"repository:{REPO}:pull,push", (ADMIN, PASSWORD)
            )
            _push(auth.base_url, {"Authorization": f"Bearer {admin_push}"})
            secret = _pull_token(auth.base_url)
            bearer = _token(auth.base_url, f"repository:{REPO}:pull", ("ci", secret))
            path = f"/v2/{REPO}/manifests/{TAG}"
            token_path = f"/token?service=cargohold&scope=repository:{REPO}:pull"
            cases = [
                ("manifest GET c=64, auth off", plain, path, {}, 64),
                (
                    "manifest GET c=64, bearer token",
                    auth,
                    path,
                    {"Authorization": f"Bearer {bearer}"},
                    64,
                ),
                ("token issuance c=16, anonymous", auth, token_path, {}, 16),
                (
                    "token issuance c=16, pull token",
                    auth,
                    token_path,
                    {"Authorization": _basic("ci", secret)},
                    16,
                ),
                (
                    "token issuance c=16, password (argon2id)",
                    auth,
                    token_path,
                    {"Authorization": _basic(ADMIN, PASSWORD)},
                    16,
                ),
            ]
            for round_ in range(args.rounds):
                order = cases if round_ % 2 == 0 else cases[::-1]
                for name, server, target, headers, connections in order:
                    sample = loads.run_load(
                        server,
                        tool="wrk",
                        method="GET",
                        paths=[target],
                        headers={"Accept": MANIFEST} | headers,
                        connections=connections,
                        duration=args.seconds,
                        scratch=root,
                    )
                    if sample.failed or sample.errors:
                        raise SystemExit(f"{name}: {sample.failed} non-2xx responses")
                    samples.setdefault(name, []).append(sample)
                    print(
                        f"round {round_ + 1}: {name}: {sample.rps:,.0f} req/s, "
                        f"{sample.server_us_per_request:,.0f} µs CPU/req",
                        flush=True,
                    )
    print("\n| load | req/s (median) | p50 ms | p99 ms | server CPU µs/req |")
    print("|---|---:|---:|---:|---:|")
    medians = {}
    for name, runs in samples.items():
        rps = statistics.median(s.rps for s in runs)
        medians[name] = rps
        print(
            f"| {name} | {rps:,.0f} | {statistics.median(s.p50_ms for s in runs):.2f} "
            f"| {statistics.median(s.p99_ms for s in runs):.1f} "
            f"| {statistics.median(s.server_us_per_request for s in runs):,.0f} |"
        )
    ratio = (
        medians["manifest GET c=64, bearer token"]
        / medians["manifest GET c=64, auth off"]
    )
    verdict = "PASS" if ratio >= 0.9 else "MISS"
    print(
        f"\nauthenticated / unauthenticated manifest GET at c=64: **{ratio:.2f}x** "
        f"(target >= 0.9x: {verdict})"
    )


if __name__ == "__main__":
    main()
