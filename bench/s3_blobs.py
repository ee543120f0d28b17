"""Blobs on S3 (moto's server): GET streamed vs redirected, the re-hash, the client.

Three measurements, each in alternating rounds, in well under a minute in all:

1. **Blob GET, streamed vs redirected.** Two ``cargohold serve`` processes share one
   bucket and data directory, one with ``storage.redirect`` off (bytes flow
   S3 → cargohold → client) and one with it on (307 to a presigned URL, which the
   client follows). A client GETs the same blob through each, alternating; reported:
   wall time per GET, cargohold's CPU per GET (its process tree, from /proc) and
   moto's, and redirected/streamed ratios.
2. **Re-hash at commit.** When a chunked upload's running SHA-256 is in another
   replica, the commit re-reads the upload from S3 and hashes it. Reported: the time
   to append an upload vs the time to re-read and hash it, in-process.
3. **Client.** aiobotocore on the event loop vs boto3 in a thread pool: HEAD and
   4 MiB GET, concurrency 8, this process's CPU per operation.

The caveat of all three: moto is a Python server on the same two cores, far slower
than a real object store, so absolute figures say little; cargohold's CPU per GET and
the ratios between alternatives are what carry over.

    .venv/bin/python bench/s3_blobs.py [--rounds N] [--blob-mib N]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3
from botocore.config import Config
from proctree import cpu_seconds
from tests.integration.serverproc import ServerProcess
from tests.s3server import MotoServer, create_bucket, storage_environ, storage_settings

from cargohold.storage.s3 import S3BlobStore

MIB = 1024 * 1024


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _pid(server: ServerProcess) -> int:
    if server.proc is None:
        raise RuntimeError("server not running")
    return server.proc.pid


def bench_get(moto: MotoServer, rounds: int, blob_mib: int, gets: int) -> list[str]:
    bucket = create_bucket(moto.url)
    environ = storage_environ(moto.url, bucket) | {"CARGOHOLD_AUTH_MODE": "none"}
    work = Path(tempfile.mkdtemp(prefix="s3-bench-"))
    modes = {
        "streamed": ServerProcess(
            work / "data", work / "streamed.log", settings=environ
        ),
        "redirected": ServerProcess(
            work / "data",
            work / "redirect.log",
            settings=environ | {"CARGOHOLD_STORAGE_REDIRECT": "true"},
        ),
    }
    moto_pid = moto.pid
    samples: dict[str, dict[str, list[float]]] = {
        mode: {"wall": [], "server": [], "moto": []} for mode in modes
    }
    try:
        for server in modes.values():
            server.start()
        data = os.urandom(blob_mib * MIB)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with httpx.Client(timeout=60.0, follow_redirects=True) as client:
            pushed = client.post(
                f"{modes['streamed'].url}/v2/bench/blobs/uploads/",
                params={"digest": digest},
                content=data,
            )
            pushed.raise_for_status()
            for round_ in range(rounds):
                order = list(modes) if round_ % 2 == 0 else list(reversed(modes))
                for mode in order:
                    server = modes[mode]
                    url = f"{server.url}/v2/bench/blobs/{digest}"
                    if client.get(url).content != data:  # warm, and checked
                        raise RuntimeError(f"{mode}: the blob came back different")
                    cpu0, moto0 = cpu_seconds(_pid(server)), cpu_seconds(moto_pid)
                    started = time.perf_counter()
                    for _ in range(gets):
                        with client.stream("GET", url) as response:
                            for _chunk in response.iter_bytes(MIB):
                                pass
                    wall = time.perf_counter() - started
                    cpu1, moto1 = cpu_seconds(_pid(server)), cpu_seconds(moto_pid)
                    samples[mode]["wall"].append(wall / gets * 1e3)
                    samples[mode]["server"].append((cpu1 - cpu0) / gets * 1e3)
                    samples[mode]["moto"].append((moto1 - moto0) / gets * 1e3)
    finally:
        for server in modes.values():
            server.stop()
    med = {
        m: {k: statistics.median(v) for k, v in s.items()} for m, s in samples.items()
    }
    lines = [
        f"### Blob GET of {blob_mib} MiB on S3 (moto), {gets} GETs x {rounds} rounds",
        "",
        "| mode | wall ms/GET | cargohold CPU ms/GET | moto CPU ms/GET |",
        "|---|---:|---:|---:|",
    ]
    for mode, values in med.items():
        lines.append(
            f"| {mode} | {values['wall']:.1f} | {values['server']:.2f} "
            f"| {values['moto']:.1f} |"
        )
    ratio = {k: med["redirected"][k] / med["streamed"][k] for k in ("wall", "server")}
    lines += [
        "",
        (
            f"redirected/streamed: wall {ratio['wall']:.2f}x, "
            f"cargohold CPU {ratio['server']:.3f}x"
        ),
    ]
    return lines


async def bench_rehash(moto: MotoServer, rounds: int, upload_mib: int) -> list[str]:
    table = storage_settings(moto.url, create_bucket(moto.url))
    table.pop("backend")
    store = S3BlobStore(**table)  # type: ignore[arg-type]
    data = os.urandom(upload_mib * MIB)
    appends, rehashes = [], []

    async def body() -> Any:
        for start in range(0, len(data), 256 * 1024):
            yield data[start : start + 256 * 1024]

    try:
        for _ in range(rounds):
            upload_id = uuid.uuid4().hex
            await store.begin_upload(upload_id)
            started = time.perf_counter()
            await store.append(upload_id, 0, body(), hashlib.sha256())
            appends.append(time.perf_counter() - started)
            started = time.perf_counter()
            hasher = hashlib.sha256()
            async for chunk in store.read_upload(upload_id, end=len(data)):
                hasher.update(chunk)
            rehashes.append(time.perf_counter() - started)
            if hasher.digest() != hashlib.sha256(data).digest():
                raise RuntimeError("the re-read upload hashes differently")
            await store.abort(upload_id)
    finally:
        await store.close()
    append, rehash = statistics.median(appends), statistics.median(rehashes)
    return [
        f"### Re-hash of a {upload_mib} MiB upload from S3 (moto), {rounds} rounds",
        "",
        (
            f"append (upload + running hash): {append * 1e3:.0f} ms "
            f"({upload_mib / append:.0f} MiB/s); re-read + hash: {rehash * 1e3:.0f} "
            f"ms ({upload_mib / rehash:.0f} MiB/s); "
            f"re-hash/append = {rehash / append:.2f}x"
        ),
    ]


async def bench_client(moto: MotoServer, rounds: int) -> list[str]:  # noqa: C901
    from aiobotocore.session import get_session  # noqa: PLC0415

    bucket = create_bucket(moto.url)
    table = storage_settings(moto.url, bucket)
    kwargs = {
        "endpoint_url": moto.url,
        "region_name": table["region"],
        "aws_access_key_id": table["access_key_id"],
        "aws_secret_access_key": table["secret_access_key"],
        "config": Config(max_pool_connections=8, s3={"addressing_style": "path"}),
    }
    heads, gets, concurrency = 200, 20, 8
    sync = boto3.session.Session().client("s3", **kwargs)
    sync.put_object(Bucket=bucket, Key="blob", Body=os.urandom(4 * MIB))
    results: dict[str, list[float]] = {}
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(concurrency)
    async with get_session().create_client("s3", **kwargs) as client:
        gate = asyncio.Semaphore(concurrency)

        async def a_head() -> None:
            async with gate:
                await client.head_object(Bucket=bucket, Key="blob")

        async def a_get() -> None:
            async with gate:
                response = await client.get_object(Bucket=bucket, Key="blob")
                async with response["Body"] as body:
                    while await body.read(MIB):
                        pass

        def s_head() -> None:
            sync.head_object(Bucket=bucket, Key="blob")

        def s_get() -> None:
            body = sync.get_object(Bucket=bucket, Key="blob")["Body"]
            while body.read(MIB):
                pass

        async def in_pool(fn: Any) -> None:
            await loop.run_in_executor(pool, fn)

        cases = {
            ("aiobotocore", "HEAD"): (a_head, heads),
            ("aiobotocore", "GET 4 MiB"): (a_get, gets),
            ("boto3 + threads", "HEAD"): (lambda: in_pool(s_head), heads),
            ("boto3 + threads", "GET 4 MiB"): (lambda: in_pool(s_get), gets),
        }
        for round_ in range(rounds):
            names = list(cases) if round_ % 2 == 0 else list(reversed(cases))
            for name in names:
                make, count = cases[name]
                cpu0 = _self_cpu()
                await asyncio.gather(*[make() for _ in range(count)])
                per_op = (_self_cpu() - cpu0) / count * 1e6
                results.setdefault(f"{name[0]}|{name[1]}", []).append(per_op)
    pool.shutdown()
    lines = [
        f"### S3 client, concurrency {concurrency}, {rounds} rounds (client CPU)",
        "",
        "| client | operation | µs CPU/op |",
        "|---|---|---:|",
    ]
    for key, values in results.items():
        client_name, operation = key.split("|")
        lines.append(
            f"| {client_name} | {operation} | {statistics.median(values):.0f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--blob-mib", type=int, default=16)
    parser.add_argument("--gets", type=int, default=8)
    args = parser.parse_args()
    with MotoServer() as moto:
        lines = bench_get(moto, args.rounds, args.blob_mib, args.gets)
        lines += ["", *asyncio.run(bench_rehash(moto, args.rounds, 64))]
        lines += ["", *asyncio.run(bench_client(moto, args.rounds))]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
