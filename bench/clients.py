"""Pushes with real clients (skopeo, podman) against each registry.

containers/image, which both use, sends each layer as one ``PATCH`` with
``Transfer-Encoding: chunked`` in small pieces: the path a registry's own
benchmarks with Content-Length bodies never see.

Every push sends an image never sent before (5 gzip layers, ~200 MiB), so no
client skips a layer the registry already has. Each layer is two gzip members: a
shared one holding a 40 MiB random file (compressed once per run) and a small
unique one (a file named after the push, then the end of the archive). Digests
and diff IDs come from copies of the shared member's hash state, so a new image
costs one write of its layers and no compression.

The clients run with private configuration only (registries.conf marking the
registry insecure, an accept-anything policy, an empty auth file, vfs storage),
all under a scratch directory found through ``HOME``, ``XDG_*`` and
``CONTAINERS_*``: nothing is read from or written to ``/etc/containers`` or the
system storage. See tests/interop/clients.py for the same set-up in the tests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
import os
import shutil
import subprocess
import tarfile
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from servers import HOST, BenchError
from transfers import TransferSample

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from servers import RunningServer

LAYERS = 5
LAYER_PAYLOAD = 40 << 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
_CLIENT_TIMEOUT = 600


def _json(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _tar_entry(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    buf.write(info.tobuf(format=tarfile.PAX_FORMAT))
    buf.write(data)
    buf.write(b"\0" * (-len(data) % tarfile.BLOCKSIZE))
    return buf.getvalue()


@dataclass(frozen=True, slots=True)
class PushedImage:
    layout: Path
    size: int  # bytes of config + layers + manifest


class ImageMaker:
    """Writes OCI image layouts of distinct ~200 MiB images."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        raw = _tar_entry("data/shared.bin", os.urandom(LAYER_PAYLOAD))
        self._raw_hash = hashlib.sha256(raw)
        self._member = gzip.compress(raw, compresslevel=1, mtime=0)
        self._member_hash = hashlib.sha256(self._member)
        self._nonce = os.urandom(6).hex()
        self._counter = itertools.count()
        self._lock = threading.Lock()

    @property
    def image_size(self) -> int:
        return LAYERS * len(self._member)  # within a few KiB

    def make(self) -> PushedImage:
        with self._lock:
            number = next(self._counter)
        root = self.scratch / f"image-{number}"
        blobs = root / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        layers: list[dict[str, object]] = []
        diff_ids: list[str] = []
        total = 0
        for index in range(LAYERS):
            token = f"{self._nonce}-{number}-{index}"
            tail = _tar_entry(f"data/{token}", token.encode()) + b"\0" * 1024
            tail_member = gzip.compress(tail, compresslevel=1, mtime=0)
            digest = self._member_hash.copy()
            digest.update(tail_member)
            diff = self._raw_hash.copy()
            diff.update(tail)
            with (blobs / digest.hexdigest()).open("wb") as out:
                out.write(self._member)
                out.write(tail_member)
            size = len(self._member) + len(tail_member)
            total += size
            layers.append(
                {
                    "mediaType": OCI_LAYER_GZIP,
                    "digest": "sha256:" + digest.hexdigest(),
                    "size": size,
                }
            )
            diff_ids.append("sha256:" + diff.hexdigest())
        config = _json(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            }
        )
        manifest = _json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": _write_blob(blobs, config, OCI_CONFIG),
                "layers": layers,
            }
        )
        entry = _write_blob(blobs, manifest, OCI_MANIFEST)
        entry["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        layout_index = {"schemaVersion": 2, "manifests": [entry]}
        (root / "index.json").write_bytes(_json(layout_index))
        return PushedImage(root, total + len(config) + len(manifest))


def _write_blob(blobs: Path, data: bytes, media_type: str) -> dict[str, object]:
    hexdigest = hashlib.sha256(data).hexdigest()
    (blobs / hexdigest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{hexdigest}", "size": len(data)}


class ContainersEnv:
    """Private registries.conf, policy, auth and vfs storage for one registry."""

    def __init__(self, root: Path, registry_port: int) -> None:
        self.root = root
        self.registry = f"{HOST}:{registry_port}"
        home = root / "home"
        user_config = home / ".config" / "containers"
        for directory in (user_config, root / "run", root / "tmp", root / "storage"):
            directory.mkdir(parents=True, exist_ok=True)
        (root / "run").chmod(0o700)
        registries = (
            'unqualified-search-registries = []\nshort-name-mode = "disabled"\n\n'
            f'[[registry]]\nlocation = "{self.registry}"\ninsecure = true\n'
        )
        storage = (
            f'[storage]\ndriver = "vfs"\ngraphroot = "{root / "storage"}"\n'
            f'runroot = "{root / "runroot"}"\n'
        )
        engine = (
            '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
            f'events_logfile_path = "{root / "events.log"}"\n'
            f'tmp_dir = "{root / "libpod-tmp"}"\n'
        )
        policy = '{"default": [{"type": "insecureAcceptAnything"}]}'
        for name, text in (
            ("registries.conf", registries),
            ("storage.conf", storage),
            ("containers.conf", engine),
            ("policy.json", policy),
        ):
            (user_config / name).write_text(text)
            (root / name).write_text(text)
        (root / "auth.json").write_text('{"auths": {}}')
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("CONTAINERS_", "REGISTRY_AUTH", "XDG_", "DOCKER_"))
        }
        self.env = inherited | {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_RUNTIME_DIR": str(root / "run"),
            "TMPDIR": str(root / "tmp"),
            "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
            "CONTAINERS_CONF": str(root / "containers.conf"),
            "REGISTRY_AUTH_FILE": str(root / "auth.json"),
        }

    def run(self, argv: Sequence[str]) -> str:
        try:
            result = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                env=self.env,
                stdin=subprocess.DEVNULL,
                timeout=_CLIENT_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"{argv[0]} timed out: {' '.join(argv)}") from exc
        if result.returncode != 0:
            raise BenchError(
                f"{' '.join(argv)}: exit {result.returncode}\n{result.stderr[-2000:]}"
            )
        return result.stdout

    def skopeo(self, *args: str) -> list[str]:
        return ["skopeo", "--policy", str(self.root / "policy.json"), *args]

    def podman(self, *args: str) -> list[str]:
        return ["podman", "--storage-driver", "vfs", *args]


CLIENTS = ("skopeo", "podman")


def push_with_client(
    client: str, server: RunningServer, maker: ImageMaker, scratch: Path, pushes: int
) -> TransferSample:
    """``pushes`` pushes of new images, one after the other; sums of the pushes
    alone (making and loading the images is not timed)."""
    env = ContainersEnv(scratch / f"{client}-env-{server.port}", server.port)
    samples = [_push_once(client, server, maker, env) for _ in range(pushes)]
    return TransferSample(
        operations=len(samples),
        bytes=sum(s.bytes for s in samples),
        seconds=sum(s.seconds for s in samples),
        server_cpu_s=sum(s.server_cpu_s for s in samples),
        client_cpu_s=sum(s.client_cpu_s for s in samples),
    )


def _push_once(
    client: str, server: RunningServer, maker: ImageMaker, env: ContainersEnv
) -> TransferSample:
    image = maker.make()
    repo = f"bench/{client}-{image.layout.name}"
    target = f"{env.registry}/{repo}:latest"
    try:
        if client == "skopeo":
            argv = env.skopeo(
                "copy", "--quiet", "--dest-tls-verify=false",
                f"oci:{image.layout}:latest", f"docker://{target}",
            )  # fmt: skip
        else:
            # podman pushes from its storage: load the image there first (untimed).
            pulled = env.podman("pull", "--quiet", f"oci:{image.layout}:latest")
            env.run(env.podman("tag", env.run(pulled).strip(), target))
            argv = env.podman("push", "--quiet", "--tls-verify=false", target)
        server_before = server.cpu_seconds()
        client_before = _children_cpu()
        started = time.monotonic()
        env.run(argv)
        seconds = time.monotonic() - started
        client_cpu = _children_cpu() - client_before
        server_cpu = server.cpu_seconds() - server_before
    finally:
        shutil.rmtree(image.layout, ignore_errors=True)
        if client == "podman":
            env.run(env.podman("rmi", "--all", "--force"))
    return TransferSample(
        operations=1,
        bytes=image.size,
        seconds=seconds,
        server_cpu_s=server_cpu,
        client_cpu_s=client_cpu,
    )


def _children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system
