"""Signing and SBOM cost on push, and how soon a pushed image is signed and described.

Three registries side by side on 127.0.0.1: Debian's ``docker-registry`` (CNCF
Distribution 2.8), cargohold with signing and SBOM off, and cargohold with both on
(``--workers`` as given, SQLite, a key made at first start). Each round, ``skopeo copy``
pushes a new ~200 MiB image (5 gzip layers; ``bench/clients.py``) to each, in an order
that rotates from round to round. For the cargohold with signing on, the clock then
runs on until the metadata API shows the push's work done: described (every layer
read), signed in every format and attested (provenance and both SBOMs), each verified.

Issue #8's targets: push time with signing and SBOM on <= 1.1x off (the work is
queued, not done in the push); the time from push to signed and described is reported.

    .venv/bin/python bench/metadata_push.py [--rounds N] [--workers N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from clients import ContainersEnv, ImageMaker
from servers import (
    RunningServer,
    cargohold_contender,
    default_cargohold_python,
    distribution_contender,
)

DONE_TIMEOUT = 600.0
# cargohold runs with token auth (the management API needs identities); skopeo logs
# in with basic credentials. Distribution runs without auth, as in bench/run.py.
ADMIN = ("bench", "bench-admin-password")
ATTESTATIONS = (
    "https://slsa.dev/provenance/v1",
    "https://spdx.dev/Document/v2.3",
    "https://cyclonedx.org/bom/v1.6",
)


def push(env: ContainersEnv, maker: ImageMaker, repository: str, *creds: str) -> float:
    image = maker.make()
    target = f"{env.registry}/{repository}:latest"
    argv = env.skopeo(
        "copy", "--quiet", "--dest-tls-verify=false", *creds,
        f"oci:{image.layout}:latest", f"docker://{target}",
    )  # fmt: skip
    started = time.monotonic()
    env.run(argv)
    return time.monotonic() - started


def digest_of(server: RunningServer, repository: str) -> str:
    return str(metadata(server, repository, "latest")["digest"])


def metadata(server: RunningServer, repository: str, reference: str) -> Any:
    base = f"{server.base_url}/api/v1/repositories/{repository}/manifests"
    answer = httpx.get(f"{base}/{reference}/metadata", auth=ADMIN)
    answer.raise_for_status()
    return answer.json()


def described_and_signed(server: RunningServer, repository: str, digest: str) -> bool:
    """Whether the metadata API shows the image described, signed in every format
    and attested (provenance, SPDX and CycloneDX)."""
    found = metadata(server, repository, digest)
    formats = {s["format"] for s in found["signatures"] if s["verified"]}
    attested = {a["predicate_type"] for a in found["attestations"] if a["verified"]}
    return (
        found["description"]["state"] == "done"
        and formats == {"simple-signing", "cosign", "sigstore-bundle"}
        and len(attested) == len(ATTESTATIONS)
    )


def wait_until_done(server: RunningServer, repository: str, digest: str) -> float:
    """Seconds until the image is signed, described and attested."""
    started = time.monotonic()
    while time.monotonic() - started < DONE_TIMEOUT:
        if described_and_signed(server, repository, digest):
            return time.monotonic() - started
        time.sleep(0.05)
    raise SystemExit(f"{repository}@{digest}: not signed and described in time")


def report(
    pushes: dict[str, list[float]], done_after: list[float], rounds: int
) -> None:
    median = {label: statistics.median(times) for label, times in pushes.items()}
    distribution = median["Distribution"]
    print()
    print(f"skopeo push of a ~200 MiB image, {rounds} rounds, median (s)")
    print()
    print("| registry | push | vs Distribution | vs cargohold off |")
    print("|---|---|---|---|")
    for label, value in median.items():
        print(
            f"| {label} | {value:.2f} | {value / distribution:.2f}x | "
            f"{value / median['cargohold off']:.2f}x |"
        )
    ratio = median["cargohold on"] / median["cargohold off"]
    verdict = "PASS" if ratio <= 1.1 else "MISS"
    print()
    print(f"push time, signing and SBOM on vs off: {ratio:.2f}x (<= 1.1x: {verdict})")
    print(
        f"push to signed and described: median {statistics.median(done_after):.2f} s "
        f"(min {min(done_after):.2f}, max {max(done_after):.2f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    python = default_cargohold_python()
    serve_args = [f"--workers={args.workers}"]
    auth = {
        "CARGOHOLD_AUTH_MODE": "token",
        "CARGOHOLD_ADMIN_USER": ADMIN[0],
        "CARGOHOLD_ADMIN_PASSWORD": ADMIN[1],
    }
    off = auth | {
        "CARGOHOLD_SIGNING_ENABLED": "false",
        "CARGOHOLD_SBOM_ENABLED": "false",
    }
    on = auth | {"CARGOHOLD_SIGNING_ENABLED": "true", "CARGOHOLD_SBOM_ENABLED": "true"}
    contenders = [
        distribution_contender(),
        cargohold_contender(python, serve_args, off, label="cargohold off"),
        cargohold_contender(python, serve_args, on, label="cargohold on"),
    ]
    pushes: dict[str, list[float]] = {c.label: [] for c in contenders}
    done_after: list[float] = []
    with tempfile.TemporaryDirectory(prefix="cargohold-bench-meta-") as scratch_dir:
        scratch = Path(scratch_dir)
        maker = ImageMaker(scratch)
        servers = [
            RunningServer(c, scratch / c.label.replace(" ", "-")) for c in contenders
        ]
        try:
            for server in servers:
                server.work_dir.mkdir()
                server.start()
            envs = [ContainersEnv(scratch / f"env-{s.port}", s.port) for s in servers]
            for round_number in range(args.rounds):
                order = list(range(len(servers)))
                shift = round_number % len(order)
                order = order[shift:] + order[:shift]
                for index in order:
                    server, env = servers[index], envs[index]
                    repository = f"bench/meta-{round_number}"
                    creds = []
                    if server.label.startswith("cargohold"):
                        creds = [f"--dest-creds={ADMIN[0]}:{ADMIN[1]}"]
                    seconds = push(env, maker, repository, *creds)
                    pushes[server.label].append(seconds)
                    print(
                        f"round {round_number + 1}: {server.label} push {seconds:.2f} s"
                    )
                    if server.label == "cargohold on":
                        digest = digest_of(server, repository)
                        waited = wait_until_done(server, repository, digest)
                        done_after.append(waited)
                        print(f"  signed and described {waited:.2f} s after the push")
        finally:
            for server in servers:
                server.stop()
    report(pushes, done_after, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
