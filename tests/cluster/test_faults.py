"""Faults in a cluster: kill -9 of a replica under concurrent pushes, and gc while
both replicas take pushes. Every acknowledged push must stay pullable and intact."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.registry import PushFailed, SampleImage, make_image

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

PUSHERS = 20
ATTEMPTS = 40  # per image: a dead replica, a 502 and a lost race each cost one
WAIT = 120.0  # bound on any wait of these tests
# gc's grace period: short, so gc has work while pushes run (test_gc_online.py).
GRACE = {"CARGOHOLD_REGISTRY_GC_GRACE_HOURS": repr(2.0 / 3600)}


def push_with_retries(
    cluster: Cluster, repo: str, tag: str, image: SampleImage, *, chunks: int
) -> tuple[bool, list[str]]:
    """Push as a client that retries does; (acknowledged, the errors it retried)."""
    client = cluster.client()
    errors: list[str] = []
    try:
        for _ in range(ATTEMPTS):
            try:
                client.push_image(repo, tag, image, chunks=chunks)
            except PushFailed as exc:
                errors.append(str(exc))
                time.sleep(0.1)
                continue
            return True, errors
        return False, errors
    finally:
        client.close()


def assert_intact(cluster: Cluster, repo: str, pushed: dict[str, SampleImage]) -> None:
    client = cluster.client()
    try:
        for tag, image in pushed.items():
            assert client.pull_image(repo, tag) == image, tag
    finally:
        client.close()


def test_kill_9_of_a_replica_during_concurrent_pushes(cluster: Cluster) -> None:
    repo = "cluster/crash"
    images = {f"t{n}": make_image(f"crash-{n}", 768 * 1024) for n in range(PUSHERS)}
    acknowledged: dict[str, SampleImage] = {}
    some_done = threading.Event()
    lock = threading.Lock()

    def push(tag: str) -> list[str]:
        done, errors = push_with_retries(cluster, repo, tag, images[tag], chunks=4)
        if done:
            with lock:
                acknowledged[tag] = images[tag]
                if len(acknowledged) >= 3:
                    some_done.set()
        return errors

    with ThreadPoolExecutor(PUSHERS) as pool:
        futures = [pool.submit(push, tag) for tag in images]
        assert some_done.wait(WAIT), "no push finished"
        with lock:
            done_before_kill = len(acknowledged)
        cluster.kill("replica-1")
        retried = [error for future in futures for error in future.result(WAIT)]
    try:
        print(f"acknowledged before the kill: {done_before_kill}; retried steps:")
        print("\n".join(sorted({e.split(":")[0] for e in retried})))
        assert done_before_kill < PUSHERS, "the kill came after every push"
        assert sorted(acknowledged) == sorted(images)  # the clients' retries got there
        assert_intact(cluster, repo, acknowledged)  # through replica 2 alone
    finally:
        cluster.restart("replica-1")
    assert_intact(cluster, repo, acknowledged)  # and through both again


def test_gc_runs_while_both_replicas_take_pushes(cluster: Cluster) -> None:
    repo = "cluster/gc"
    stop = threading.Event()
    passes: list[tuple[float, float]] = []

    def collect() -> None:
        # gc in its own processes, as cron would run it, on the shared database and
        # storage; every other pass also deletes untagged manifests.
        while not stop.is_set() and len(passes) < 50:
            args = ["gc"] + (["--delete-untagged"] if len(passes) % 2 else [])
            started = time.monotonic()
            cluster.cli(*args, **GRACE)
            passes.append((started, time.monotonic()))

    collector = threading.Thread(target=collect)
    collector.start()
    pushed: dict[str, SampleImage] = {}
    try:
        # Each tag is pushed twice: the first image becomes untagged, for gc to take.
        jobs = [
            (f"t{n}", make_image(f"gc-{n}-{round_}", 256 * 1024))
            for round_ in range(2)
            for n in range(8)
        ]
        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            results = list(
                pool.map(
                    lambda job: push_with_retries(cluster, repo, *job, chunks=2), jobs
                )
            )
        finished = time.monotonic()
        for (tag, image), (done, _) in zip(jobs, results, strict=True):
            assert done, tag
            pushed[tag] = image  # the second round's image is what the tag names
    finally:
        stop.set()
        collector.join(WAIT)
    overlapping = [p for p in passes if p[0] < finished and p[1] > started]
    print(f"gc passes: {len(passes)}, during the pushes: {len(overlapping)}")
    assert overlapping, "gc never ran while the replicas took pushes"
    # One more collection with nothing in flight, then everything tagged is intact.
    cluster.cli("gc", "--delete-untagged", **GRACE)
    assert_intact(cluster, repo, pushed)
