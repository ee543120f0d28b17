"""Benchmark cargohold against CNCF Distribution (Debian's docker-registry).

Both registries run side by side for the whole run, on 127.0.0.1, each seeded
through its own HTTP API with the same content. Every measurement runs on both,
one after the other, in alternating order, for ``--rounds`` rounds; the tables
show medians over rounds and cargohold/Distribution ratios. See bench/README.md.

    python bench/run.py [--rounds N] [--quick]
                        [--only manifest,blob,upload,tags,rss,clients]
                        [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import platform
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import clients
import loads
import report
import seed
import servers
import transfers
from report import SLOTS, Results, Row, Slot, Target

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from types import FrameType

    from transfers import Operation

GROUPS = ("manifest", "blob", "upload", "tags", "rss", "clients")
RSS_UPLOADS = 16
RSS_UPLOAD_SIZE = 128 << 20
UPLOAD_SIZE = 64 << 20


@dataclass(frozen=True, slots=True)
class Budget:
    """How long each load runs and how many transfers it may start."""

    rounds: int
    load_seconds: int  # wrk takes whole seconds
    transfer_seconds: float
    settle_seconds: float
    warmup_seconds: int
    max_downloads: int  # 64 MiB GETs per transfer load
    max_uploads: int  # 64 MiB uploads per transfer load (bounds disk use)
    rss_rounds: int  # each moves 2 GiB per server: fewer than the other rounds
    client_pushes: int  # pushes of a ~210 MB image per client measurement


FULL = Budget(
    5, 3, 3.0, 0.5, 1, max_downloads=64, max_uploads=8, rss_rounds=3, client_pushes=2
)
QUICK = Budget(
    2, 1, 1.5, 0.2, 1, max_downloads=24, max_uploads=4, rss_rounds=1, client_pushes=1
)


@dataclass(frozen=True, slots=True)
class Load:
    row: Row
    tool: str
    method: str
    paths: tuple[str, ...]
    headers: dict[str, str]
    connections: int


@dataclass(frozen=True, slots=True)
class Transfer:
    row: Row
    make_operation: Callable[[], Operation]
    concurrency: int
    max_operations: int
    needs_single_post: bool = False


@dataclass(frozen=True, slots=True)
class ClientPush:
    row: Row
    client: str  # one of clients.CLIENTS


@dataclass(slots=True)
class Plan:
    loads: list[Load] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    pushes: list[ClientPush] = field(default_factory=list)
    rss: Row | None = None

    @property
    def rows(self) -> list[Row]:
        rows = [load.row for load in self.loads]
        rows += [transfer.row for transfer in self.transfers]
        rows += [push.row for push in self.pushes]
        return rows + ([self.rss] if self.rss else [])


def build_plan(
    groups: Sequence[str], content: seed.SeedContent, budget: Budget
) -> Plan:
    plan = Plan()
    if "manifest" in groups:
        plan.loads += _manifest_loads(content)
    if "blob" in groups:
        blob_paths = tuple(f"/v2/{seed.REPO}/blobs/{d}" for d in content.blob_digests)
        row = Row("blob-head-c16", "load", "blob HEAD, c=16 (hload)")
        plan.loads.append(Load(row, "hload", "HEAD", blob_paths, {}, 16))
        plan.transfers += _download_transfers(content, budget)
    if "upload" in groups:
        plan.transfers += _upload_transfers(budget)
    if "tags" in groups:
        for query in ("?n=1000", ""):
            row = Row(
                f"tags-list{'-n1000' if query else ''}-c16",
                "load",
                f"GET tags/list{query} (1000 tags), c=16 (wrk)",
            )
            path = f"/v2/{seed.REPO}/tags/list{query}"
            plan.loads.append(Load(row, "wrk", "GET", (path,), {}, 16))
    if "clients" in groups:
        plan.pushes += _client_pushes()
    if "rss" in groups:
        plan.rss = Row(
            "rss-uploads",
            "rss",
            f"{RSS_UPLOADS} concurrent uploads of {RSS_UPLOAD_SIZE >> 20} MiB "
            "(fresh server)",
            Target("< 200 MiB", candidate_below=200.0),
        )
    return plan


def _manifest_loads(content: seed.SeedContent) -> list[Load]:
    accept = {"Accept": seed.MANIFEST_ACCEPT}
    paths = tuple(f"/v2/{seed.REPO}/manifests/{tag}" for tag in content.tags)
    target = Target(">= 3x req/s", ratio_at_least=3.0)
    result = []
    # Debian's wrk hangs on HEAD responses with a Content-Length: see hload.py.
    for method, tool in (("GET", "wrk"), ("HEAD", "hload")):
        for connections in (1, 16, 64):
            row = Row(
                key=f"manifest-{method.lower()}-c{connections}",
                kind="load",
                title=f"manifest {method} by tag, c={connections} ({tool})",
                target=target if connections == 64 else None,
            )
            result.append(Load(row, tool, method, paths, accept, connections))
    return result


def _download_transfers(content: seed.SeedContent, budget: Budget) -> list[Transfer]:
    operation = functools.partial(
        transfers.download_operation, content.big_blob_digest, len(content.big_blob)
    )
    target = Target(">= 0.9x MB/s", ratio_at_least=0.9)
    return [
        Transfer(
            Row(
                f"blob-get-c{concurrency}",
                "transfer",
                f"blob GET 64 MiB, c={concurrency}",
                target,
            ),
            operation,
            concurrency,
            budget.max_downloads,
        )
        for concurrency in (1, 8)
    ]


def _client_pushes() -> list[ClientPush]:
    # Time <= 0.8x Distribution's is MB/s >= 1.25x (same image size on both).
    targets = {"skopeo": Target("time <= 0.8x (MB/s >= 1.25x)", ratio_at_least=1.25)}
    titles = {
        "skopeo": "skopeo copy oci: -> docker://",
        "podman": "podman push (compresses on the fly, chunked PATCH)",
    }
    return [
        ClientPush(
            Row(
                f"{client}-push",
                "transfer",
                f"{titles[client]}, 5 layers, ~210 MB",
                targets.get(client),
            ),
            client,
        )
        for client in clients.CLIENTS
    ]


def _upload_transfers(budget: Budget) -> list[Transfer]:
    body = transfers.UploadBody(UPLOAD_SIZE)
    target = Target(">= 1.5x MB/s", ratio_at_least=1.5)
    special = {
        ("streamed", 1): Target(
            "CPU/GB <= POST+PUT's", cpu_at_most_row="upload-monolithic-c1"
        ),
        ("monolithic", 8): Target(">= 2x MB/s", ratio_at_least=2.0),
    }
    titles = {
        "monolithic": "upload 64 MiB, POST + PUT with body",
        "single": "upload 64 MiB, single POST ?digest= with body",
        "chunked": "upload 64 MiB, POST + PATCHes of 8 MiB + PUT",
        "streamed": "upload 64 MiB, POST + one chunked-encoding PATCH "
        "(32 KiB pieces) + PUT",
    }
    cases = (
        ("monolithic", 1),
        ("single", 1),
        ("chunked", 1),
        ("streamed", 1),
        ("monolithic", 4),
        ("monolithic", 8),
    )
    return [
        Transfer(
            Row(
                f"upload-{mode}-c{concurrency}",
                "transfer",
                f"{titles[mode]}, c={concurrency}",
                special.get((mode, concurrency), target),
                reference_fallback="upload-monolithic-c1" if mode == "single" else None,
            ),
            functools.partial(transfers.upload_operation, mode, body),
            concurrency,
            budget.max_uploads * max(1, concurrency // 2),
            needs_single_post=mode == "single",
        )
        for mode, concurrency in cases
    ]


def log(message: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    sys.stderr.write(f"[{stamp}] {message}\n")
    sys.stderr.flush()


class Bench:
    def __init__(
        self,
        contenders: dict[Slot, servers.Contender],
        budget: Budget,
        groups: Sequence[str],
        tmp_root: Path,
    ) -> None:
        self.contenders = contenders
        self.budget = budget
        self.groups = groups
        self.tmp = tmp_root
        self.results = Results(labels=_labels(contenders))
        self.facts: dict[Slot, seed.ServerFacts] = {}
        self.plan = Plan()
        self.failures = 0
        self.images: clients.ImageMaker | None = None

    def run(self) -> None:
        log("generating seed content")
        content = seed.make_content()
        plan = self.plan = build_plan(self.groups, content, self.budget)
        running: dict[Slot, servers.RunningServer] = {}
        with contextlib.ExitStack() as stack:
            needs_seeded = bool(plan.loads or plan.transfers or plan.pushes)
            for slot in SLOTS if needs_seeded else ():
                running[slot] = stack.enter_context(self._server(slot, "main"))
                log(f"{running[slot].label}: up on port {running[slot].port}, seeding")
                started = time.monotonic()
                seed.seed(running[slot], content)
                self.facts[slot] = seed.check(running[slot], content)
                log(
                    f"{running[slot].label}: seeded and checked in "
                    f"{time.monotonic() - started:.1f}s: {self.facts[slot]}"
                )
            if needs_seeded:
                self._warm_up(plan, running)
            if plan.pushes:
                log("making the shared layer of the client pushes")
                self.images = clients.ImageMaker(self.tmp)
            rss_body = transfers.UploadBody(RSS_UPLOAD_SIZE) if plan.rss else None
            for round_index in range(self.budget.rounds):
                log(f"round {round_index + 1}/{self.budget.rounds}")
                items: list[Load | Transfer | ClientPush] = [
                    *plan.loads,
                    *plan.transfers,
                    *plan.pushes,
                ]
                for index, item in enumerate(items):
                    for slot in _order(round_index + index):
                        self._measure(item, slot, running[slot])
                if plan.rss and rss_body and round_index < self.budget.rss_rounds:
                    for slot in _order(round_index):
                        self._measure_rss(plan.rss, slot, rss_body)

    @contextlib.contextmanager
    def _server(self, slot: Slot, purpose: str) -> Iterator[servers.RunningServer]:
        work_dir = Path(tempfile.mkdtemp(prefix=f"{slot}-{purpose}-", dir=self.tmp))
        with servers.RunningServer(self.contenders[slot], work_dir) as server:
            yield server

    def _warm_up(self, plan: Plan, running: dict[Slot, servers.RunningServer]) -> None:
        log("warming up")
        seconds = self.budget.warmup_seconds
        for slot in SLOTS:
            for load in (
                plan.loads[:1] + [x for x in plan.loads if x.tool == "hload"][:1]
            ):
                self._run_load(load, running[slot], seconds)
            for transfer in plan.transfers:
                if self._can(slot, transfer):
                    transfers.run_transfers(
                        running[slot],
                        transfer.make_operation(),
                        concurrency=1,
                        duration=seconds,
                        max_operations=1,
                    )

    def _can(self, slot: Slot, transfer: Transfer) -> bool:
        return not transfer.needs_single_post or self.facts[slot].single_post_upload

    def _run_load(
        self, load: Load, server: servers.RunningServer, seconds: int
    ) -> loads.RequestSample:
        return loads.run_load(
            server,
            tool=load.tool,
            method=load.method,
            paths=load.paths,
            headers=load.headers,
            connections=load.connections,
            duration=seconds,
            scratch=self.tmp,
        )

    def _measure(
        self,
        item: Load | Transfer | ClientPush,
        slot: Slot,
        server: servers.RunningServer,
    ) -> None:
        """Measure once; a failed measurement is noted and the run goes on, unless
        the server is gone."""
        time.sleep(self.budget.settle_seconds)
        try:
            self._measure_once(item, slot, server)
        except servers.ServerGoneError:
            raise
        except servers.BenchError as exc:
            server.ensure_alive()
            self.failures += 1
            self.results.note(item.row.key, slot, "error")
            log(f"  {item.row.key:28} {server.label:>14}: FAILED: {exc}")

    def _measure_once(
        self,
        item: Load | Transfer | ClientPush,
        slot: Slot,
        server: servers.RunningServer,
    ) -> None:
        if isinstance(item, ClientPush):
            if self.images is None:
                raise servers.BenchError("no image maker")
            result = clients.push_with_client(
                item.client, server, self.images, self.tmp, self.budget.client_pushes
            )
            self.results.add(item.row.key, slot, result.to_json())
            log(
                f"  {item.row.key:28} {server.label:>14}: {result.seconds:6.2f} s "
                f"{result.mb_per_s:6,.0f} MB/s {result.server_cpu_s_per_gb:5.2f} "
                f"CPU-s/GB ({result.operations} pushes)"
            )
            return
        if isinstance(item, Load):
            sample = self._run_load(item, server, self.budget.load_seconds)
            self.results.add(item.row.key, slot, sample.to_json())
            log(
                f"  {item.row.key:28} {server.label:>14}: {sample.rps:9,.0f} req/s "
                f"p50 {sample.p50_ms:6.2f} ms  {sample.server_us_per_request:7.1f} "
                f"µs/req" + (f"  FAILED {sample.failed}" if sample.failed else "")
            )
            return
        if not self._can(slot, item):
            self.results.note(item.row.key, slot, "n/a (202)")
            return
        result = transfers.run_transfers(
            server,
            item.make_operation(),
            concurrency=item.concurrency,
            duration=self.budget.transfer_seconds,
            max_operations=item.max_operations,
        )
        self.results.add(item.row.key, slot, result.to_json())
        log(
            f"  {item.row.key:28} {server.label:>14}: {result.mb_per_s:9,.0f} MB/s "
            f"{result.server_cpu_s_per_gb:5.2f} CPU-s/GB ({result.operations} ops)"
        )

    def _measure_rss(self, row: Row, slot: Slot, body: transfers.UploadBody) -> None:
        with self._server(slot, "rss") as server:
            time.sleep(self.budget.settle_seconds)
            try:
                sample = transfers.measure_upload_rss(server, body, uploads=RSS_UPLOADS)
            except servers.BenchError as exc:
                self.failures += 1
                self.results.note(row.key, slot, "error")
                log(f"  {row.key:28} {server.label:>14}: FAILED: {exc}")
                return
        self.results.add(row.key, slot, sample.to_json())
        log(
            f"  {row.key:28} {server.label:>14}: VmHWM sum {sample.hwm_mib:6.0f} MiB, "
            f"peak RSS {sample.peak_rss_mib:6.0f} MiB, {sample.mb_per_s:6,.0f} MB/s"
        )

    def header(self, elapsed: float) -> list[str]:
        c, r = self.contenders["candidate"], self.contenders["reference"]
        b = self.budget
        facts = "; ".join(
            f"{self.results.labels[slot]}: tags/list returns {f.tags_listed_default} "
            f"tags without n, {f.tags_listed_n1000} with n=1000, single-POST upload "
            f"{'yes' if f.single_post_upload else 'no'}"
            for slot, f in self.facts.items()
        )
        return [
            (
                f"{c.label} {c.version} vs {r.label} {r.version}, "
                f"{datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
                f"Linux {platform.release()}, Python {platform.python_version()}."
            ),
            (
                f"{b.rounds} rounds, order alternating; medians (min-max over rounds "
                f"when >= 3). Request loads {b.load_seconds:g} s each (wrk -t1 for "
                f"GET, hload for HEAD); transfers up to {b.transfer_seconds:g} s; "
                f"run took {elapsed / 60:.1f} min. Ratio = {c.label}/{r.label}."
            ),
            *([f"Checks: {facts}."] if facts else []),
        ]


def _order(index: int) -> tuple[Slot, Slot]:
    return SLOTS if index % 2 == 0 else (SLOTS[1], SLOTS[0])


def _labels(contenders: dict[Slot, servers.Contender]) -> dict[Slot, str]:
    c, r = contenders["candidate"].label, contenders["reference"].label
    if c == r:
        return {"candidate": f"{c} (as candidate)", "reference": r}
    return {"candidate": c, "reference": r}


def _raise_interrupt(signum: int, _frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="cargohold vs Distribution, side by side, alternating rounds."
    )
    parser.add_argument("--rounds", type=int, help="rounds (default 5; --quick: 2)")
    parser.add_argument(
        "--quick", action="store_true", help="short loads and 2 rounds (< 3 min)"
    )
    parser.add_argument(
        "--only",
        default=",".join(GROUPS),
        help=f"comma-separated subset of {','.join(GROUPS)}",
    )
    parser.add_argument("--json", type=Path, help="write raw samples and medians here")
    parser.add_argument(
        "--candidate",
        choices=("cargohold", "distribution"),
        default="cargohold",
        help="what runs against Distribution ('distribution' = reference vs itself)",
    )
    parser.add_argument(
        "--reference",
        choices=("distribution", "cargohold-pulls-off", "cargohold-metrics-off"),
        default="distribution",
        help="what the candidate is compared with; 'cargohold-pulls-off' is "
        "cargohold with pull tracking off (pulls.enabled=false): each ratio is then "
        "tracking on / off; 'cargohold-metrics-off' likewise with metrics.enabled="
        "false (request metrics on / off)",
    )
    parser.add_argument(
        "--cargohold-python",
        default=servers.default_cargohold_python(),
        help="interpreter that runs 'python -m cargohold serve' (default: repo .venv)",
    )
    parser.add_argument(
        "--cargohold-arg",
        action="append",
        default=[],
        help="extra argument for 'cargohold serve' (repeatable)",
    )
    parser.add_argument(
        "--cargohold-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="environment for cargohold (repeatable); the bench sets "
        + " ".join(f"{k}={v}" for k, v in servers.CARGOHOLD_ENV.items())
        + " and clears other CARGOHOLD_* variables",
    )
    parser.add_argument(
        "--tmp-dir", type=Path, help="where data dirs go (default: system temp)"
    )
    args = parser.parse_args(argv)
    if any("=" not in item for item in args.cargohold_env):
        parser.error("--cargohold-env takes NAME=VALUE")
    unknown = set(args.only.split(",")) - set(GROUPS)
    if unknown:
        parser.error(f"unknown --only groups: {', '.join(sorted(unknown))}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    base = QUICK if args.quick else FULL
    budget = dataclasses.replace(base, rounds=args.rounds or base.rounds)
    # Also SIGINT: a shell without job control starts background jobs with it
    # ignored, and Python would keep ignoring it.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_interrupt)
    cargohold_env = dict(item.split("=", 1) for item in args.cargohold_env)
    switched_off = {
        "cargohold-pulls-off": ("CARGOHOLD_PULLS_ENABLED", "pulls off"),
        "cargohold-metrics-off": ("CARGOHOLD_METRICS_ENABLED", "metrics off"),
    }
    if args.reference == "distribution":
        reference = servers.distribution_contender()
    else:
        variable, what = switched_off[args.reference]
        reference = servers.cargohold_contender(
            args.cargohold_python,
            args.cargohold_arg,
            cargohold_env | {variable: "false"},
            label=f"cargohold ({what})",
        )
    candidate = (
        servers.cargohold_contender(
            args.cargohold_python, args.cargohold_arg, cargohold_env
        )
        if args.candidate == "cargohold"
        else reference
    )
    groups = [group for group in GROUPS if group in args.only.split(",")]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(
        prefix="cargohold-bench-", dir=args.tmp_dir
    ) as tmp:
        bench = Bench(
            {"candidate": candidate, "reference": reference}, budget, groups, Path(tmp)
        )
        status = 0
        try:
            bench.run()
        except servers.BenchError as exc:
            log(f"error: {exc}")
            if args.candidate == "cargohold":
                log("(to check the harness alone: --candidate distribution)")
            status = 1
    elapsed = time.monotonic() - started
    if bench.results.samples:
        table = report.markdown(bench.results, bench.plan.rows, bench.header(elapsed))
        sys.stdout.write("\n" + table)
    if bench.failures:
        log(f"{bench.failures} measurements failed: see 'error' cells and the log")
        status = status or 2
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "header": bench.header(elapsed),
                    "labels": bench.results.labels,
                    "budget": dataclasses.asdict(budget),
                    "samples": bench.results.samples,
                    "medians": bench.results.summary(),
                    "failures": bench.failures,
                },
                indent=1,
            )
        )
    return status


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        log("interrupted; servers stopped and temp dirs removed")
        raise SystemExit(130) from None
