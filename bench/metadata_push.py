"""Signing and SBOM cost on push, and how soon a pushed image is signed and described.

Three registries side by side on 127.0.0.1: Debian's ``docker-registry`` (CNCF
Distribution 2.8), cargohold with signing and SBOM off, and cargohold with both on
(``--workers`` as given, SQLite, a key made at first start). Each round, ``skopeo copy``
pushes a new ~200 MiB image (5 gzip layers; ``bench/clients.py``) to each, in an order
that rotates from round to round. For the cargohold with signing on, the clock then
runs on until the push's work is done: no outbox message naming the image's digest is
pending any more (sign, describe, attest, match), and its ``.sig`` tag answers.

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

import httpx
from clients import ContainersEnv, ImageMaker
from servers import (
    RunningServer,
    cargohold_contender,
    default_cargohold_python,
    distribution_contender,
)

DONE_TIMEOUT = 600.0
WORK_CHANNELS = ("sign", "describe", "attest", "match")


def push(env: ContainersEnv, maker: ImageMaker, repository: str) -> float:
    image = maker.make()
    target = f"{env.registry}/{repository}:latest"
    argv = env.skopeo(
        "copy", "--quiet", "--dest-tls-verify=false",
        f"oci:{image.layout}:latest", f"docker://{target}",
    )  # fmt: skip
    started = time.monotonic()
    env.run(argv)
    return time.monotonic() - started


def digest_of(server: RunningServer, repository: str) -> str:
    answer = httpx.head(
        f"{server.base_url}/v2/{repository}/manifests/latest",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    answer.raise_for_status()
    return answer.headers["Docker-Content-Digest"]


def pending_work(server: RunningServer, digest: str) -> list[str]:
    answer = httpx.get(
        f"{server.base_url}/api/v1/outbox", params={"state": "pending", "limit": 1000}
    )
    answer.raise_for_status()
    return [
        m["key"]
        for m in answer.json()["messages"]
        if m["channel"] in WORK_CHANNELS and digest in m["key"]
    ]


def wait_until_done(server: RunningServer, repository: str, digest: str) -> float:
    """Seconds until nothing is pending for ``digest`` and its .sig tag answers."""
    started = time.monotonic()
    signature = (
        f"{server.base_url}/v2/{repository}/manifests/"
        + digest.replace(":", "-")
        + ".sig"
    )
    while time.monotonic() - started < DONE_TIMEOUT:
        if (
            not pending_work(server, digest)
            and httpx.head(signature).status_code == 200
        ):
            return time.monotonic() - started
        time.sleep(0.05)
    raise SystemExit(f"{repository}@{digest}: not signed and described in time")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    python = default_cargohold_python()
    serve_args = [f"--workers={args.workers}"]
    off = {"CARGOHOLD_SIGNING_ENABLED": "false", "CARGOHOLD_SBOM_ENABLED": "false"}
    on = {"CARGOHOLD_SIGNING_ENABLED": "true", "CARGOHOLD_SBOM_ENABLED": "true"}
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
                    seconds = push(env, maker, repository)
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
    median = {label: statistics.median(times) for label, times in pushes.items()}
    distribution = median["Distribution"]
    print()
    print(f"skopeo push of a ~200 MiB image, {args.rounds} rounds, median (s)")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
