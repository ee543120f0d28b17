"""Crash safety against a real server: ``kill -9`` mid-traffic, restart, check.

What a crash may lose is only what was never acknowledged. After every crash:

* each manifest PUT that answered 201 is served, by tag and by digest, with the pushed
  bytes and ``Docker-Content-Digest``, and every blob it references with its bytes;
* each blob upload that answered 201 is still linked;
* every tag listed resolves, and no request over the data answers 5xx;
* each upload session that was in flight either resumes (its ``Range`` is a chunk
  boundary the client sent, matching the bytes stored) and completes with the right
  digest, or answers ``BLOB_UPLOAD_UNKNOWN``;
* ``cargohold fsck`` (server stopped) finds no missing blob and no dangling reference.

Also: a client that vanishes mid-chunk leaves the upload as it was before that chunk.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.integration.helpers import OCI_MANIFEST, digest_of, image_manifest
from tests.integration.serverproc import ServerProcess, run_cli
from tests.watch5xx import server_log_errors

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

KIB = 1024
MIB = 1024 * KIB
CLIENTS = 16
ITERATIONS = 5
REPOS = tuple(f"crash/repo-{i}" for i in range(4))
RANGE = re.compile(r"^0-(\d+)$")
OCTETS = {"Content-Type": "application/octet-stream"}
UPLOAD_METHODS = ("single", "post-put", "chunked", "chunked-final", "streamed")
# fsck lines that must never follow a crash (the other kinds are bounded by age or
# are reported below as their own finding).
CORRUPTION = (
    "blob recorded but missing from storage",
    "blob of the wrong size in storage",
    "manifest refers to a missing blob or child",
    "bytes in storage with no record",
    "upload bytes with no session",
)
SESSION_WITHOUT_BYTES = "upload session with no bytes"


def stored_size(response: httpx.Response) -> int:
    """Bytes an upload holds, per its ``Range`` (``0-0`` is empty: chunks are > 1 B)."""
    match = RANGE.match(response.headers.get("Range", ""))
    assert match, f"bad Range {response.headers.get('Range')!r}"
    last = int(match.group(1))
    return 0 if last == 0 else last + 1


def error_code(response: httpx.Response) -> str | None:
    try:
        return str(response.json()["errors"][0]["code"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


# --------------------------------------------------------------------------- pushing


@dataclass
class Session:
    """An upload session the client opened; what it sent and where it could stop."""

    repo: str
    location: str
    data: bytes
    boundaries: set[int] = field(default_factory=lambda: {0})
    finished: bool = False

    @property
    def upload_id(self) -> str:
        return self.location.rstrip("/").rsplit("/", 1)[-1]

    @property
    def digest(self) -> str:
        return digest_of(self.data)


@dataclass(frozen=True)
class Pushed:
    """A manifest whose PUT answered 201."""

    repo: str
    tag: str
    digest: str
    content: bytes
    blobs: tuple[bytes, ...]
    round: int


@dataclass
class Ledger:
    """What the clients were told, shared by every pusher thread."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    manifests: list[Pushed] = field(default_factory=list)
    blobs: dict[tuple[str, str], int] = field(default_factory=dict)
    sessions: list[Session] = field(default_factory=list)
    # Responses that must not happen while the server is up (a crash only ever shows
    # as a transport error).
    unexpected: list[str] = field(default_factory=list)
    responses: int = 0


class Unexpected(Exception):
    pass


class Pusher:
    """One client pushing images until stopped or until the server goes away."""

    def __init__(
        self, index: int, *, url: str, ledger: Ledger, stop: threading.Event,
        rng: random.Random, shared: list[bytes], round_: int,
    ) -> None:  # fmt: skip
        self.index = index
        self.url = url
        self.ledger = ledger
        self.stop = stop
        self.rng = rng
        self.shared = shared
        self.round = round_
        self.repo = REPOS[index % len(REPOS)]

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=20.0) as client:
                count = 0
                while not self.stop.is_set() and count < 1000:
                    self.push_image(client, count)
                    count += 1
        except httpx.TransportError:
            pass  # the server was killed under this client: the point of the test
        except Unexpected:
            pass  # already recorded
        except Exception as exc:  # noqa: BLE001 - reported by the test, not lost in a thread
            with self.ledger.lock:
                self.ledger.unexpected.append(f"pusher {self.index}: {exc!r}")

    def expect(
        self, response: httpx.Response, status: int, what: str
    ) -> httpx.Response:
        with self.ledger.lock:
            self.ledger.responses += 1
            if response.status_code != status:
                self.ledger.unexpected.append(
                    f"{what}: {response.status_code} {response.text[:300]}"
                )
                raise Unexpected
        return response

    def random_blob(self) -> bytes:
        size = (
            self.rng.randint(2 * MIB, 3 * MIB)
            if self.rng.random() < 0.05
            else (self.rng.randint(KIB, 384 * KIB))
        )
        return self.rng.randbytes(size)

    def chunks(self, data: bytes) -> list[bytes]:
        pieces, start = [], 0
        while start < len(data):
            step = self.rng.randint(32 * KIB, 256 * KIB)
            pieces.append(data[start : start + step])
            start += step
        return pieces

    def open_session(self, client: httpx.Client, data: bytes) -> Session:
        response = client.post(f"/v2/{self.repo}/blobs/uploads/")
        self.expect(response, 202, "POST upload")
        session = Session(self.repo, response.headers["Location"], data)
        with self.ledger.lock:
            self.ledger.sessions.append(session)
        return session

    def upload(self, client: httpx.Client, data: bytes) -> None:
        digest = digest_of(data)
        method = self.rng.choice(UPLOAD_METHODS)
        if method == "single":
            response = client.post(
                f"/v2/{self.repo}/blobs/uploads/", params={"digest": digest},
                content=data, headers=OCTETS,
            )  # fmt: skip
            self.expect(response, 201, "single-request upload")
        else:
            session = self.open_session(client, data)
            pieces = [data] if method == "post-put" else self.chunks(data)
            last = pieces.pop() if method in {"post-put", "chunked-final"} else b""
            offset = 0
            for piece in pieces:
                headers = dict(OCTETS)
                body: bytes | Iterator[bytes] = piece
                if method == "streamed":
                    # No Content-Range and no Content-Length: a chunked-encoding body.
                    body = iter(
                        [
                            piece[i : i + 16 * KIB]
                            for i in range(0, len(piece), 16 * KIB)
                        ]
                    )
                else:
                    headers["Content-Range"] = f"{offset}-{offset + len(piece) - 1}"
                session.boundaries.add(offset + len(piece))
                response = client.patch(session.location, content=body, headers=headers)
                self.expect(response, 202, f"PATCH {method}")
                offset += len(piece)
                if stored_size(response) != offset:
                    self.fail(
                        f"PATCH answered Range {response.headers['Range']} at {offset}"
                    )
            session.boundaries.add(len(data))
            response = client.put(
                session.location, params={"digest": digest}, content=last,
                headers=OCTETS,
            )  # fmt: skip
            self.expect(response, 201, f"PUT {method}")
            session.finished = True
        if response.headers.get("Docker-Content-Digest") != digest:
            self.fail(f"blob upload answered digest {response.headers}")
        with self.ledger.lock:
            self.ledger.blobs[(self.repo, digest)] = len(data)

    def fail(self, message: str) -> None:
        with self.ledger.lock:
            self.ledger.unexpected.append(f"pusher {self.index}: {message}")
        raise Unexpected

    def push_image(self, client: httpx.Client, count: int) -> None:
        layers = [self.random_blob() for _ in range(self.rng.randint(1, 3))]
        if self.rng.random() < 0.4:
            layers.append(
                self.rng.choice(self.shared)
            )  # the same bytes from many clients
        config = json.dumps(
            {"architecture": "amd64", "os": "linux", "pusher": self.index, "n": count,
             "round": self.round, "nonce": self.rng.random()}
        ).encode()  # fmt: skip
        for blob in (config, *layers):
            self.upload(client, blob)
        manifest = image_manifest(config, layers)
        tag = f"p{self.index}-r{self.round}-n{count}"
        response = client.put(
            f"/v2/{self.repo}/manifests/{tag}", content=manifest,
            headers={"Content-Type": OCI_MANIFEST},
        )  # fmt: skip
        self.expect(response, 201, "PUT manifest")
        digest = digest_of(manifest)
        if response.headers.get("Docker-Content-Digest") != digest:
            self.fail(f"manifest PUT answered digest {response.headers}")
        with self.ledger.lock:
            self.ledger.manifests.append(
                Pushed(self.repo, tag, digest, manifest, (config, *layers), self.round)
            )


# ------------------------------------------------------------------------- checking


@dataclass
class Outcome:
    resumed: int = 0
    unknown: int = 0
    completed: int = 0
    # Status said 204 with a Range, but the bytes were gone (see the module report).
    stale: list[str] = field(default_factory=list)


class Checker:
    """Requests after the restart; any 5xx on any of them is recorded."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self.server_errors: list[str] = []
        self.data_dir = data_dir
        self.client = httpx.Client(
            base_url=url, timeout=30.0, event_hooks={"response": [self._hook]}
        )

    def _hook(self, response: httpx.Response) -> None:
        if response.status_code >= 500:
            request = response.request
            self.server_errors.append(
                f"{request.method} {request.url} -> {response.status_code}"
            )

    def close(self) -> None:
        self.client.close()

    def manifests(self, pushed: list[Pushed], current_round: int) -> None:
        verified_blobs: set[tuple[str, str]] = set()
        for m in pushed:
            for reference in (m.tag, m.digest):
                response = self.client.get(
                    f"/v2/{m.repo}/manifests/{reference}",
                    headers={"Accept": OCI_MANIFEST},
                )
                assert response.status_code == 200, (m.repo, reference, response.text)
                assert response.content == m.content, (m.repo, reference)
                assert response.headers["Docker-Content-Digest"] == m.digest
            for blob in m.blobs:
                key = (m.repo, digest_of(blob))
                if key in verified_blobs:
                    continue
                verified_blobs.add(key)
                path = f"/v2/{m.repo}/blobs/{key[1]}"
                if m.round < current_round:  # read in full after an earlier crash
                    response = self.client.head(path)
                    assert response.status_code == 200, (path, response.status_code)
                    assert response.headers["Content-Length"] == str(len(blob)), path
                    continue
                response = self.client.get(path)
                assert response.status_code == 200, (path, response.text[:300])
                assert (
                    f"sha256:{hashlib.sha256(response.content).hexdigest()}" == key[1]
                )
                assert response.content == blob, path
                assert response.headers["Docker-Content-Digest"] == key[1]

    def acknowledged_blobs(self, blobs: dict[tuple[str, str], int]) -> None:
        for (repo, digest), size in blobs.items():
            response = self.client.head(f"/v2/{repo}/blobs/{digest}")
            assert response.status_code == 200, (repo, digest, response.status_code)
            assert response.headers["Content-Length"] == str(size)

    def listings(self, pushed: list[Pushed]) -> None:
        response = self.client.get("/v2/_catalog")
        assert response.status_code == 200, response.text
        repositories = response.json()["repositories"]
        assert {m.repo for m in pushed} <= set(repositories)
        for repo in repositories:
            response = self.client.get(f"/v2/{repo}/tags/list")
            assert response.status_code == 200, (repo, response.text)
            tags = response.json()["tags"]
            assert {m.tag for m in pushed if m.repo == repo} <= set(tags), repo
            for tag in tags:
                response = self.client.get(
                    f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST}
                )
                assert response.status_code == 200, f"listed tag {repo}:{tag} fails"
                assert response.headers["Docker-Content-Digest"] == digest_of(
                    response.content
                )

    def upload_file(self, session: Session) -> Path:
        return self.data_dir / "storage" / "uploads" / session.upload_id

    def session(self, session: Session, outcome: Outcome) -> None:
        """An upload in flight at the crash: resumes at a chunk boundary, or unknown."""
        status = self.client.get(session.location)
        blob = self.client.head(f"/v2/{session.repo}/blobs/{session.digest}")
        assert blob.status_code in {200, 404}, blob.status_code
        if status.status_code == 404:
            assert error_code(status) == "BLOB_UPLOAD_UNKNOWN", status.text
            patch = self.client.patch(
                session.location, content=b"x" * 10, headers=OCTETS
            )
            assert patch.status_code == 404, patch.text
            assert error_code(patch) == "BLOB_UPLOAD_UNKNOWN", patch.text
            put = self.client.put(session.location, params={"digest": session.digest})
            if put.status_code == 201:
                # The crash came after the bytes were committed under their digest and
                # before the blob was recorded: retrying the final PUT completes it.
                blob = self.client.get(f"/v2/{session.repo}/blobs/{session.digest}")
                assert blob.status_code == 200, blob.text
                assert digest_of(blob.content) == session.digest
                outcome.completed += 1
                return
            assert put.status_code == 404, put.text
            assert error_code(put) == "BLOB_UPLOAD_UNKNOWN", put.text
            outcome.unknown += 1
            return
        assert status.status_code == 204, status.text
        size = stored_size(status)
        assert size in session.boundaries, (
            f"{session.location}: Range says {size} bytes, chunks ended at "
            f"{sorted(session.boundaries)}"
        )
        path = self.upload_file(session)
        if path.exists():
            with path.open("rb") as stored:
                assert stored.read(size) == session.data[:size], "stored bytes differ"
        rest = session.data[size:]
        if rest:
            headers = OCTETS | {"Content-Range": f"{size}-{len(session.data) - 1}"}
            patch = self.client.patch(session.location, content=rest, headers=headers)
            if self._stale(session, patch, outcome):
                return
            assert patch.status_code == 202, patch.text
            assert stored_size(patch) == len(session.data)
        put = self.client.put(session.location, params={"digest": session.digest})
        if self._stale(session, put, outcome):
            return
        assert put.status_code == 201, put.text
        assert put.headers["Docker-Content-Digest"] == session.digest
        fetched = self.client.get(f"/v2/{session.repo}/blobs/{session.digest}")
        assert fetched.status_code == 200
        assert fetched.content == session.data
        outcome.resumed += 1

    def _stale(
        self, session: Session, response: httpx.Response, outcome: Outcome
    ) -> bool:
        """A session row whose bytes were already moved to the blob when the crash hit.

        Tolerated here only in exactly that state (no upload bytes, the blob stored,
        fsck lists the session) because it is a known bug, reproduced by
        ``test_session_whose_bytes_became_a_blob_is_resumable_or_unknown``; once that
        test passes, make this an error.
        """
        if response.status_code != 404:
            return False
        assert error_code(response) == "BLOB_UPLOAD_UNKNOWN", response.text
        assert not self.upload_file(session).exists(), (
            f"{session.location} answered 404 but its bytes are still stored"
        )
        hexdigest = session.digest.removeprefix("sha256:")
        blob_file = (
            self.data_dir / "storage" / "blobs" / "sha256" / hexdigest[:2] / hexdigest
        )
        assert blob_file.exists(), (
            f"{session.location}: bytes neither uploaded nor a blob"
        )
        outcome.stale.append(session.upload_id)
        return True


def run_fsck(data_dir: Path) -> tuple[int, list[str]]:
    result = run_cli("fsck", data_dir=data_dir)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert result.returncode in {0, 1}, result.stdout + result.stderr
    return result.returncode, lines


def traffic_until_kill(
    server: ServerProcess, ledger: Ledger, *, seed: int, round_: int,
    shared: list[bytes], kill_after: float,
) -> None:  # fmt: skip
    stop = threading.Event()
    pushers = [
        Pusher(
            i,
            url=server.url,
            ledger=ledger,
            stop=stop,
            rng=random.Random(f"{seed}/{round_}/{i}"),  # noqa: S311
            shared=shared,
            round_=round_,
        )
        for i in range(CLIENTS)
    ]
    threads = [
        threading.Thread(target=p.run, name=f"pusher-{p.index}") for p in pushers
    ]
    for thread in threads:
        thread.start()
    try:
        time.sleep(kill_after)
    finally:
        server.kill()
        stop.set()
        deadline = time.monotonic() + 30
        for thread in threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))
    # A straggler must not reach the restarted server on the same port.
    assert not [t.name for t in threads if t.is_alive()], "pushers did not stop"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_kill_9_mid_traffic_loses_nothing_acknowledged(
    server: ServerProcess, workdir: Path, seed: int, rng: random.Random
) -> None:
    shared = [rng.randbytes(rng.randint(64 * KIB, 512 * KIB)) for _ in range(4)]
    ledger = Ledger()
    report: list[str] = []
    stale_sessions: list[str] = []
    fsck_sessions_without_bytes = 0
    started = time.monotonic()
    for round_ in range(ITERATIONS):
        ledger.sessions = []
        before = len(ledger.manifests), ledger.responses
        phase = time.monotonic()
        server.start()
        kill_after = rng.uniform(1.0, 3.0)
        traffic_until_kill(
            server,
            ledger,
            seed=seed,
            round_=round_,
            shared=shared,
            kill_after=kill_after,
        )
        assert not ledger.unexpected, f"seed {seed}: {ledger.unexpected[:10]}"

        server.start()
        restarted = time.monotonic()
        checker = Checker(server.url, server.data_dir)
        outcome = Outcome()
        try:
            checker.manifests(ledger.manifests, round_)
            checker.acknowledged_blobs(ledger.blobs)
            checker.listings(ledger.manifests)
            in_flight = [s for s in ledger.sessions if not s.finished]
            for session in in_flight:
                checker.session(session, outcome)
            checker.listings(ledger.manifests)  # and again, after the resumed uploads
        finally:
            checker.close()
        assert not checker.server_errors, f"seed {seed}: {checker.server_errors[:10]}"
        checked = time.monotonic()
        code, elapsed = server.terminate(timeout=60)
        assert code == 0, server.log_tail()
        stopped = time.monotonic()

        fsck_code, lines = run_fsck(server.data_dir)
        corrupt = [line for line in lines if line.startswith(CORRUPTION)]
        assert not corrupt, f"seed {seed}, round {round_}: fsck after a crash: {lines}"
        without_bytes = {
            line.split(": ", 1)[1]
            for line in lines
            if line.startswith(SESSION_WITHOUT_BYTES)
        }
        # The only problem a crash may leave is a session row whose bytes were committed
        # to a blob just before the kill: the sessions that answered "stale" above, or
        # single-request uploads whose upload id the client never learned.
        stale_sessions += outcome.stale
        assert set(stale_sessions) <= without_bytes, lines
        assert fsck_code == (1 if without_bytes else 0), lines
        new_without_bytes = len(without_bytes) - fsck_sessions_without_bytes
        fsck_sessions_without_bytes = len(without_bytes)
        report.append(
            f"round {round_}: kill after {kill_after:.2f}s, "
            f"{len(ledger.manifests) - before[0]} manifests and "
            f"{ledger.responses - before[1]} responses acknowledged, "
            f"{len(in_flight)} sessions in flight ({outcome.resumed} resumed, "
            f"{outcome.unknown} unknown, {len(outcome.stale)} stale), "
            f"fsck: {new_without_bytes} new sessions without bytes, "
            f"SIGTERM exit in {elapsed:.2f}s; "
            f"traffic+restart {restarted - phase:.1f}s, "
            f"checks {checked - restarted:.1f}s, "
            f"fsck {time.monotonic() - stopped:.1f}s"
        )
    print(f"seed {seed}, {time.monotonic() - started:.1f}s")
    print("\n".join(report))
    print(
        f"sessions with a Range after the bytes became a blob: {len(stale_sessions)}; "
        f"fsck 'upload session with no bytes': {fsck_sessions_without_bytes}"
    )
    assert len(ledger.manifests) > ITERATIONS, "too little traffic to test anything"


# -------------------------------------------------------------- client disconnects


def _wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _hang_up_mid_patch(server: ServerProcess, location: str, declared: bytes) -> None:
    """Send a PATCH declaring ``declared``, deliver 1 MiB of it, close the socket."""
    head = [
        f"PATCH {location} HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        "Content-Type: application/octet-stream",
        f"Content-Length: {len(declared)}",
    ]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sock.sendall(declared[:MIB])
        time.sleep(0.2)  # let the server start writing the chunk


@pytest.mark.allow_5xx  # the body checks the log itself
def test_client_disconnect_is_not_logged_as_a_server_error(
    server: ServerProcess, rng: random.Random
) -> None:
    # A client hanging up mid-body is the client's doing: no "unhandled error", no 500.
    server.start()
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        started = client.post("/v2/crash/hangup/blobs/uploads/")
        assert started.status_code == 202
        location = started.headers["Location"]
        _hang_up_mid_patch(server, location, rng.randbytes(4 * MIB))
        status = client.get(location)  # answered after the broken request is done
        assert status.status_code == 204, status.text
    server.terminate()
    assert server_log_errors(server.log_path.read_text()) == []


@pytest.mark.parametrize(
    "content_range", [True, False], ids=["content-range", "streamed"]
)
def test_client_disconnect_mid_chunk_leaves_the_upload_resumable(
    server: ServerProcess, content_range: bool, rng: random.Random
) -> None:
    server.start()
    repo = "crash/disconnect"
    first = rng.randbytes(256 * KIB)
    second = rng.randbytes(10 * MIB)
    whole = first + second
    upload_file = server.data_dir / "storage" / "uploads"
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        started = client.post(f"/v2/{repo}/blobs/uploads/")
        assert started.status_code == 202
        location = started.headers["Location"]
        upload_file /= location.rsplit("/", 1)[-1]
        patch = client.patch(
            location, content=first,
            headers=OCTETS | {"Content-Range": f"0-{len(first) - 1}"},
        )  # fmt: skip
        assert patch.status_code == 202
        assert patch.headers["Range"] == f"0-{len(first) - 1}"

        # Declare 10 MiB, send 1 MiB, hang up.
        head = [
            f"PATCH {location} HTTP/1.1",
            f"Host: 127.0.0.1:{server.port}",
            "Content-Type: application/octet-stream",
            f"Content-Length: {len(second)}",
        ]
        if content_range:
            head.append(f"Content-Range: {len(first)}-{len(whole) - 1}")
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            sock.sendall(second[:MIB])
            time.sleep(0.2)  # let the server start writing the chunk

        # The server rolls the partial chunk back once it sees the hang-up.
        assert _wait_for(lambda: upload_file.stat().st_size == len(first), 10), (
            f"upload file holds {upload_file.stat().st_size} bytes, not {len(first)}"
        )
        for digest in (
            digest_of(whole),
            digest_of(first + second[:MIB]),
            digest_of(first),
        ):
            assert client.head(f"/v2/{repo}/blobs/{digest}").status_code == 404
        status = client.get(location)
        assert status.status_code == 204, status.text
        assert status.headers["Range"] == f"0-{len(first) - 1}"

        patch = client.patch(
            location, content=second,
            headers=OCTETS | {"Content-Range": f"{len(first)}-{len(whole) - 1}"},
        )  # fmt: skip
        assert patch.status_code == 202, patch.text
        assert patch.headers["Range"] == f"0-{len(whole) - 1}"
        put = client.put(location, params={"digest": digest_of(whole)})
        assert put.status_code == 201, put.text
        assert put.headers["Docker-Content-Digest"] == digest_of(whole)
        fetched = client.get(f"/v2/{repo}/blobs/{digest_of(whole)}")
        assert fetched.status_code == 200
        assert fetched.content == whole
        assert not upload_file.exists()
    code, _ = server.terminate()
    assert code == 0


def test_session_whose_bytes_became_a_blob_is_resumable_or_unknown(
    server: ServerProcess, rng: random.Random
) -> None:
    """The state ``kill -9`` leaves between the commit rename and the metadata write."""
    data = rng.randbytes(300 * KIB)
    repo = "crash/window"
    server.start()
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        started = client.post(f"/v2/{repo}/blobs/uploads/")
        location = started.headers["Location"]
        patch = client.patch(
            location,
            content=data,
            headers=OCTETS | {"Content-Range": f"0-{len(data) - 1}"},
        )
        assert patch.status_code == 202
    server.terminate()
    upload = server.data_dir / "storage" / "uploads" / location.rsplit("/", 1)[-1]
    hexdigest = digest_of(data).removeprefix("sha256:")
    blob = server.data_dir / "storage" / "blobs" / "sha256" / hexdigest[:2] / hexdigest
    blob.parent.mkdir(parents=True, exist_ok=True)
    upload.rename(blob)  # what FilesystemBlobStore._commit_sync does before the crash

    server.start()
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        status = client.get(location)
        if status.status_code == 404:
            assert error_code(status) == "BLOB_UPLOAD_UNKNOWN"
            return
        assert status.status_code == 204
        assert stored_size(status) == len(data)
        put = client.put(location, params={"digest": digest_of(data)})
        assert put.status_code == 201, f"status said 0-{len(data) - 1}, PUT: {put.text}"
        assert client.get(f"/v2/{repo}/blobs/{digest_of(data)}").content == data


def test_server_process_helper_kills_the_whole_group(server: ServerProcess) -> None:
    server.start()
    assert server.workers, "granian worker not found"
    server.kill()
    assert not server.running()
    with contextlib.suppress(httpx.TransportError):
        httpx.get(f"{server.url}/v2/", timeout=2.0)
        pytest.fail("server still answers after kill")
