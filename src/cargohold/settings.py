"""Typed, frozen settings: loaded once from a TOML file plus ``CARGOHOLD_*`` variables.

Precedence, lowest first: built-in defaults, the TOML file, the environment, then
explicit overrides (command-line flags). Every key is documented in
``docs/configuration.md``; an unknown key or a bad value fails at load with a message
naming it.

Environment variables name a key as ``CARGOHOLD_<SECTION>_<KEY>``
(``CARGOHOLD_SERVER_PORT``) or, for top-level keys, ``CARGOHOLD_<KEY>``
(``CARGOHOLD_DATA_DIR``).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

ENV_PREFIX = "CARGOHOLD_"
DEFAULT_DATA_DIR = Path("cargohold-data")
_BOOLEANS = {
    "1": True,
    "true": True,
    "yes": True,
    "0": False,
    "false": False,
    "no": False,
}


class SettingsError(ValueError):
    """A configuration value is missing, unknown or malformed."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Seconds SIGTERM waits for in-flight requests before closing them.
    shutdown_timeout: float = 30.0
    # Reverse proxies (CIDRs) whose X-Forwarded-For is believed for pull records.
    trusted_proxies: tuple[str, ...] = ()
    # The address people reach the registry at (https://registry.example.com), when
    # it differs from host:port (a proxy, a name); emails point recipients there.
    public_url: str | None = None
    # This process's name in the X-Cargohold-Replica answer header (which replica
    # behind a load balancer answered); default <hostname>-<port>.
    replica_id: str | None = None

    def __post_init__(self) -> None:
        if self.replica_id is not None and not (
            0 < len(self.replica_id) <= 64  # noqa: PLR2004
            and self.replica_id.isascii()
            and self.replica_id.isprintable()
        ):
            msg = "server.replica_id must be 1 to 64 printable ASCII characters"
            raise SettingsError(msg)
        url = self.public_url
        if url is not None and not (
            url.startswith(("https://", "http://")) and len(url) > len("https://")
        ):
            msg = f"server.public_url: {url!r} is not an http(s) URL"
            raise SettingsError(msg)

    @property
    def public_host(self) -> str:
        """The registry's name in image references (``registry.example.com``):
        ``public_url``'s host (and port), else the address it listens on."""
        if self.public_url is not None:
            return urlsplit(self.public_url).netloc
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class FilesystemStorage:
    backend: Literal["filesystem"] = "filesystem"
    root: Path | None = None  # default: <data_dir>/storage
    io_threads: int = 8


MIB = 1024 * 1024
# S3's limits: parts of 5 MiB to 5 GiB (the last may be smaller); presigned URLs
# (SigV4) live at most 7 days.
S3_MIN_PART = 5 * MIB
S3_MAX_PART = 5 * 1024 * MIB
S3_MAX_PRESIGN = 7 * 24 * 3600
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True, slots=True)
class S3Storage:
    """Blobs in an S3-compatible object store (AWS S3, MinIO, Ceph RGW, Garage, R2)."""

    backend: Literal["s3"] = "s3"
    bucket: str = ""
    # None: AWS's endpoint for the region; else the store's URL (http(s)://host:port).
    endpoint_url: str | None = None
    region: str = "us-east-1"
    # Both or neither; neither: the standard AWS credential chain (AWS_ACCESS_KEY_ID,
    # ~/.aws/credentials, instance roles).
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    prefix: str = ""  # keys start with "<prefix>/" when set
    redirect: bool = False  # blob GET answers 307 to a presigned URL
    presign_seconds: int = 300
    part_size: int = 8 * MIB

    def __post_init__(self) -> None:
        if not self.bucket:
            raise SettingsError("storage.bucket: required when storage.backend is s3")
        if not _BUCKET.fullmatch(self.bucket):
            msg = (
                f"storage.bucket: {self.bucket!r} is not an S3 bucket name "
                "(3-63 lower-case letters, digits, dots and hyphens)"
            )
            raise SettingsError(msg)
        url = self.endpoint_url
        if url is not None and not (
            url.startswith(("https://", "http://")) and urlsplit(url).hostname
        ):
            raise SettingsError(f"storage.endpoint_url: {url!r} is not an http(s) URL")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise SettingsError(
                "storage.access_key_id and storage.secret_access_key: "
                "set both or neither (neither: the AWS credential chain)"
            )
        if self.prefix.startswith("/") or "//" in self.prefix:
            raise SettingsError(
                f"storage.prefix: {self.prefix!r} must not start with / or hold //"
            )
        if not 1 <= self.presign_seconds <= S3_MAX_PRESIGN:
            raise SettingsError(
                f"storage.presign_seconds: {self.presign_seconds} is not in "
                f"1..{S3_MAX_PRESIGN} (S3 allows presigned URLs up to 7 days)"
            )
        if not S3_MIN_PART <= self.part_size <= S3_MAX_PART:
            raise SettingsError(
                f"storage.part_size: {self.part_size} is not in "
                f"{S3_MIN_PART}..{S3_MAX_PART} (S3's multipart part sizes)"
            )


StorageSettings = FilesystemStorage | S3Storage
_STORAGE_BACKENDS: dict[str, type[FilesystemStorage | S3Storage]] = {
    "filesystem": FilesystemStorage,
    "s3": S3Storage,
}


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    # default: sqlite:///<data_dir>/cargohold.db. PostgreSQL:
    # postgresql+psycopg://user:password@host:5432/name (install cargohold[postgresql]).
    url: str | None = None
    # PostgreSQL connections each process keeps open, and how many more it may open
    # under load; a request waits at most pool_timeout_seconds for one. SQLite ignores
    # them. Size the server's max_connections for replicas x workers x (both sums).
    pool_size: int = 5
    max_overflow: int = 10
    pool_timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.pool_size < 1 or self.max_overflow < 0:
            msg = "database.pool_size must be at least 1, max_overflow at least 0"
            raise SettingsError(msg)
        if self.pool_timeout_seconds <= 0:
            msg = "database.pool_timeout_seconds must be positive"
            raise SettingsError(msg)
        url = self.url
        if url is not None and not url.startswith(("sqlite:", "postgresql")):
            msg = (
                f"database.url: {url.split('://')[0]!r} is not supported; use "
                "sqlite:///<path> or postgresql+psycopg://user@host/name"
            )
            raise SettingsError(msg)


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    max_manifest_bytes: int = 4 * 1024 * 1024
    # Largest blob an upload may grow to; 0: no limit but the free disk space.
    max_blob_bytes: int = 0
    max_page_size: int = 1000
    upload_ttl_hours: float = 24.0
    gc_grace_hours: float = 1.0


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["console", "json"] = "console"
    access: bool = False


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    # Serve Prometheus metrics at /metrics and count requests (off: neither).
    enabled: bool = True
    # Client addresses (CIDRs) that may read /metrics; others get 403. The peer
    # address is used, or X-Forwarded-For's when the peer is in server.trusted_proxies.
    allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")

    def __post_init__(self) -> None:
        for cidr in self.allow:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                msg = f"metrics.allow: {cidr!r} is not an address or CIDR network"
                raise SettingsError(msg) from None


@dataclass(frozen=True, slots=True)
class StatusSettings:
    # Run the status checks (one process at a time) and store them for /status.
    enabled: bool = True
    # Seconds between check rounds, across all server processes.
    interval_seconds: float = 60.0
    # Upstream registries (pull-through caches' origins) probed with GET <url>/v2/.
    upstreams: tuple[str, ...] = ()
    # The page's name in /status and the Statuspage JSON (default: the public host).
    name: str | None = None

    def __post_init__(self) -> None:
        if not 1.0 <= self.interval_seconds <= 3600.0:  # noqa: PLR2004
            msg = "status.interval_seconds: must be in 1..3600"
            raise SettingsError(msg)
        for url in self.upstreams:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                msg = f"status.upstreams: {url!r} is not an http(s) URL"
                raise SettingsError(msg)


@dataclass(frozen=True, slots=True)
class AuthSettings:
    # "token": Docker token auth (the default). "none": everyone may do everything;
    # only for a throwaway local registry, and the server warns loudly at start.
    mode: Literal["token", "none"] = "token"
    # The token "service" (audience) and issuer; clients echo the service back.
    service: str = "cargohold"
    issuer: str = "cargohold"
    # Public URL of the token endpoint for the challenge; default: <request base>/token.
    realm: str | None = None
    token_ttl_seconds: int = 300
    refresh_token_ttl_days: int = 30
    signing_algorithm: Literal["ES256", "EdDSA"] = "ES256"
    # Old signing keys stay published this long after a rotation.
    key_retention_hours: float = 24.0
    # Tags anonymous users may pull from public repositories (glob patterns).
    starter_tags: tuple[str, ...] = ("latest", "latest-dev")
    default_visibility: Literal["public", "private"] = "private"
    # Failed logins allowed per identity and per client address in the window.
    max_failures_per_identity: int = 5
    max_failures_per_client: int = 20
    failure_window_seconds: int = 300
    # Seconds a revocation (pull token, user) may take to reach other processes.
    revocation_check_seconds: float = 1.0


@dataclass(frozen=True, slots=True)
class PullSettings:
    # Record manifest pulls (who pulled what, when, from where, with which client).
    enabled: bool = True
    # Record HEAD requests too (clients HEAD a manifest to check it changed).
    record_head: bool = False
    # Anonymous pulls are recorded per client address, or per network prefix.
    anonymous_granularity: Literal["address", "prefix"] = "address"
    ipv4_prefix: int = 24
    ipv6_prefix: int = 48
    # Pulls are written in batches this often; a crash loses at most this window.
    flush_interval_seconds: float = 1.0
    # Pulls waiting for a write, per process; beyond it new ones are dropped (logged).
    max_queue: int = 100_000
    # Days individual pull events are kept, and their daily aggregates.
    retention_days: int = 90
    aggregate_retention_days: int = 730


@dataclass(frozen=True, slots=True)
class AdminSettings:
    # The first administrator, created on first start when no user exists.
    user: str | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    # Deliver to loopback, private and link-local addresses too (tests, closed labs).
    allow_private_networks: bool = False
    # Seconds one delivery may take (connect, send, answer) before it counts as failed.
    timeout_seconds: float = 10.0
    # After a rotation, the previous secret also signs for this long.
    rotation_overlap_hours: float = 24.0
    # The CloudEvents ``source`` of every event: the registry's public base URL.
    source: str = "/cargohold"


@dataclass(frozen=True, slots=True)
class AdvisorySettings:
    # Who counts as affected: identities that pulled a covered digest this recently.
    affected_window_days: int = 90
    # How often (at most) a process checks the database for advisory changes before
    # answering manifest GET/HEAD with Warning headers: other processes show a new
    # advisory within this window.
    warning_refresh_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.affected_window_days < 1:
            msg = "advisories.affected_window_days must be at least 1"
            raise SettingsError(msg)
        if not 0 < self.warning_refresh_seconds <= 3600:  # noqa: PLR2004
            msg = "advisories.warning_refresh_seconds must be in (0, 3600]"
            raise SettingsError(msg)


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    # How often an idle worker looks for due messages.
    poll_interval_seconds: float = 1.0
    # Messages leased per round, and delivered at once at most.
    batch: int = 100
    concurrency: int = 16
    # How long a lease lasts: a worker killed mid-delivery holds its rows this long.
    lease_seconds: float = 120.0
    # Attempts before a message is dead; the wait doubles from base to max delay.
    max_attempts: int = 12
    base_delay_seconds: float = 30.0
    max_delay_seconds: float = 6 * 3600.0
    # Delivered messages are kept this long, then pruned.
    keep_days: float = 30.0


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    # None: email is off; email messages wait in the outbox until it is set.
    host: str | None = None
    port: int = 25
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str | None = None
    password: str | None = None
    sender: str = "cargohold@localhost"
    timeout_seconds: float = 30.0
    # Open connections kept for reuse (and so messages sent at once).
    connections: int = 4
    # CA certificates (PEM) to trust for the server's TLS certificate instead of the
    # system's: a relay with a private CA. The certificate is always verified.
    ca_file: Path | None = None


@dataclass(frozen=True, slots=True)
class SigningSettings:
    # Sign every manifest pushed to ``repositories`` (cosign signature and bundle,
    # OpenPGP simple signing), and attach signed SBOM and provenance attestations.
    enabled: bool = False
    # Globs over repository names whose pushes are signed.
    repositories: tuple[str, ...] = ("*",)
    # Where the signing keys live (private keys, mode 0600); default:
    # ``<data_dir>/signing``. Replicas must share it (or be given the same keys).
    key_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class SbomSettings:
    # Read every image manifest pushed to ``repositories`` and record its packages
    # (the SBOM, the vulnerability view); queued after the push, never in its way.
    enabled: bool = True
    repositories: tuple[str, ...] = ("*",)
    # An image whose layers hold more than this (uncompressed) is recorded as failed.
    max_image_bytes: int = 16 << 30
    # Images one process reads at once (each reads its layers in a worker thread).
    concurrency: int = 1


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = DEFAULT_DATA_DIR
    server: ServerSettings = field(default_factory=ServerSettings)
    storage: StorageSettings = field(default_factory=FilesystemStorage)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    log: LogSettings = field(default_factory=LogSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    advisories: AdvisorySettings = field(default_factory=AdvisorySettings)
    pulls: PullSettings = field(default_factory=PullSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    signing: SigningSettings = field(default_factory=SigningSettings)
    sbom: SbomSettings = field(default_factory=SbomSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    status: StatusSettings = field(default_factory=StatusSettings)

    @property
    def storage_root(self) -> Path:
        """The filesystem store's directory (S3: where it would be, unused)."""
        root = (
            self.storage.root if isinstance(self.storage, FilesystemStorage) else None
        )
        return root or self.data_dir / "storage"

    @property
    def signing_key_dir(self) -> Path:
        return self.signing.key_dir or self.data_dir / "signing"

    @property
    def database_url(self) -> str:
        return (
            self.database.url
            or f"sqlite:///{(self.data_dir / 'cargohold.db').resolve()}"
        )


_SECTIONS = {
    "server": ServerSettings,
    "storage": FilesystemStorage,  # or S3Storage: see _build_storage
    "database": DatabaseSettings,
    "registry": RegistrySettings,
    "log": LogSettings,
    "auth": AuthSettings,
    "admin": AdminSettings,
    "webhooks": WebhookSettings,
    "advisories": AdvisorySettings,
    "pulls": PullSettings,
    "outbox": OutboxSettings,
    "smtp": SmtpSettings,
    "signing": SigningSettings,
    "sbom": SbomSettings,
    "metrics": MetricsSettings,
    "status": StatusSettings,
}


def _coerce(name: str, kind: Any, value: Any) -> Any:
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        return _coerce_optional(name, kind, value)
    if origin is tuple:
        return _coerce_strings(name, value)
    if origin is Literal:
        return _coerce_literal(name, kind, value)
    if kind is bool:
        return _coerce_bool(name, value)
    return _coerce_scalar(name, kind, value)


def _coerce_optional(name: str, kind: Any, value: Any) -> Any:
    options = [a for a in get_args(kind) if a is not type(None)]
    if value is None or value == "":
        return None
    return _coerce(name, options[0], value)


def _coerce_strings(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, str) for v in value
    ):
        raise SettingsError(f"{name}: expected a list of strings")
    return tuple(value)


def _coerce_literal(name: str, kind: Any, value: Any) -> Any:
    if value not in get_args(kind):
        allowed = ", ".join(map(str, get_args(kind)))
        raise SettingsError(f"{name}: {value!r} is not one of {allowed}")
    return value


def _coerce_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _BOOLEANS:
        return _BOOLEANS[value.lower()]
    raise SettingsError(f"{name}: {value!r} is not a boolean")


def _coerce_scalar(name: str, kind: Any, value: Any) -> Any:
    """Numbers, strings and paths: checked, then converted by ``kind(value)``."""
    if kind in (int, float) and isinstance(value, bool):
        raise SettingsError(f"{name}: expected a number, got {value!r}")
    if kind is int and isinstance(value, float):
        raise SettingsError(f"{name}: expected a whole number, got {value!r}")
    if kind in (str, Path) and not isinstance(value, str | Path):
        raise SettingsError(f"{name}: expected a string, got {value!r}")
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(
            f"{name}: {value!r} is not a valid {kind.__name__}"
        ) from exc


def _build(cls: type, values: Mapping[str, Any], prefix: str) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise SettingsError(f"unknown setting {prefix}{min(unknown)}")
    kwargs = {k: _coerce(f"{prefix}{k}", hints[k], v) for k, v in values.items()}
    return cls(**kwargs)


def _build_storage(values: Mapping[str, Any]) -> StorageSettings:
    """``[storage]``: a tagged union, ``backend`` picks the dataclass."""
    backend = values.get("backend", "filesystem")
    cls = _STORAGE_BACKENDS.get(backend) if isinstance(backend, str) else None
    if cls is None:
        allowed = ", ".join(_STORAGE_BACKENDS)
        raise SettingsError(f"storage.backend: {backend!r} is not one of {allowed}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise SettingsError(
            f"unknown setting storage.{min(unknown)} for storage.backend {backend!r}"
        )
    built: StorageSettings = _build(cls, values, "storage.")
    return built


def _environment(environ: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        section, _, rest = name.partition("_")
        if section in _SECTIONS and rest:
            tree.setdefault(section, {})[rest] = value
        elif name in {f.name for f in dataclasses.fields(Settings)}:
            tree[name] = value
    return tree


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load settings from ``path`` (TOML), ``environ`` and ``overrides``.

    Raises:
        SettingsError: unreadable file, unknown key or malformed value.
    """
    tree: dict[str, Any] = {}
    if path is not None:
        try:
            tree = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read {path}: {exc}") from exc
    tree = _merge(tree, _environment(environ or {}))
    tree = _merge(tree, overrides or {})
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        raw = tree.pop(name, {})
        if not isinstance(raw, Mapping):
            raise SettingsError(f"[{name}] must be a table")
        if name == "storage":
            sections[name] = _build_storage(raw)
        else:
            sections[name] = _build(cls, raw, f"{name}.")
    unknown = set(tree) - {"data_dir"}
    if unknown:
        raise SettingsError(f"unknown setting {min(unknown)}")
    data_dir = _coerce("data_dir", Path, tree.get("data_dir", DEFAULT_DATA_DIR))
    _check_pulls(sections["server"], sections["pulls"])
    return Settings(data_dir=data_dir, **sections)


def _check_pulls(server: ServerSettings, pulls: PullSettings) -> None:
    for entry in server.trusted_proxies:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise SettingsError(
                f"server.trusted_proxies: {entry!r} is not an address or CIDR network"
            ) from None
    limits = {
        "pulls.ipv4_prefix": (pulls.ipv4_prefix, 0, 32),
        "pulls.ipv6_prefix": (pulls.ipv6_prefix, 0, 128),
        "pulls.max_queue": (pulls.max_queue, 1, 10_000_000),
        "pulls.retention_days": (pulls.retention_days, 1, 100_000),
        "pulls.aggregate_retention_days": (pulls.aggregate_retention_days, 1, 100_000),
    }
    for name, (value, low, high) in limits.items():
        if not low <= value <= high:
            raise SettingsError(f"{name}: {value} is not in {low}..{high}")
    if not 0 < pulls.flush_interval_seconds <= 3600:  # noqa: PLR2004
        raise SettingsError("pulls.flush_interval_seconds: must be in (0, 3600]")
