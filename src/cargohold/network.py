"""What a client must reach to use this registry, derived from the running settings.

Owns: the network requirements (hosts, ports, paths, TLS, allowlisting, pull-through
caches) as one value, for ``cargohold network``, ``GET /network`` and
``GET /network.json``. Pure: settings in, a frozen value out; no I/O.

Must not: name anything private (repositories, identities, keys): the page is public.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cargohold.settings import S3Storage

if TYPE_CHECKING:
    from cargohold.settings import Settings

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One host and port a client opens a connection to."""

    role: str
    url: str
    scheme: str
    host: str
    port: int
    tls: bool
    purpose: str


@dataclass(frozen=True, slots=True)
class PathUse:
    path: str
    purpose: str


@dataclass(frozen=True, slots=True)
class CacheRecipe:
    """How to put one product's pull-through cache in front of the registry."""

    product: str
    kind: str
    steps: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NetworkRequirements:
    registry_host: str
    endpoints: tuple[Endpoint, ...]
    paths: tuple[PathUse, ...]
    blob_redirects: bool
    blob_redirect_note: str
    tls_note: str
    allowlist: tuple[str, ...]
    caches: tuple[CacheRecipe, ...]
    cache_credentials: str
    starter_tags: tuple[str, ...]
    starter_note: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        return asdict(self)


def _endpoint(role: str, url: str, purpose: str) -> Endpoint:
    parts = urlsplit(url)
    scheme = parts.scheme
    port = parts.port or _DEFAULT_PORTS[scheme]
    return Endpoint(
        role=role,
        url=f"{scheme}://{parts.netloc}",
        scheme=scheme,
        host=parts.hostname or "",
        port=port,
        tls=scheme == "https",
        purpose=purpose,
    )


def registry_url(settings: Settings) -> str:
    """The registry's base URL: ``server.public_url``, else the listen address."""
    server = settings.server
    if server.public_url is not None:
        return server.public_url.rstrip("/")
    scheme = "https" if server.tls_cert else "http"
    return f"{scheme}://{server.public_host}"


_PATHS = (
    PathUse("/v2/", "the OCI Distribution API: version check, manifests, blobs, tags"),
    PathUse("/token", "Docker token service: clients trade credentials for a token"),
    PathUse(
        "/extensions/v2/",
        "the signature extension (containers/image simple signatures)",
    ),
    PathUse(
        "/.well-known/cargohold/",
        "the registry's public signing keys (cosign.pub, signing-key.asc, keys.json)",
    ),
)


def _caches(registry: str, host: str) -> tuple[CacheRecipe, ...]:
    return (
        CacheRecipe(
            "JFrog Artifactory",
            "Remote repository (package type Docker)",
            (
                f"URL: {registry}",
                "User name: any (e.g. pull); Password / Access Token: a pull token",
                (
                    "Enable Token Authentication (the registry answers 401 with a "
                    "Bearer challenge)"
                ),
                (
                    f"Pull through it: <artifactory>/<remote-repo>/<repository>:<tag> "
                    f"instead of {host}/<repository>:<tag>"
                ),
            ),
        ),
        CacheRecipe(
            "Sonatype Nexus Repository",
            "Proxy repository (docker (proxy))",
            (
                f"Remote storage: {registry}",
                "Docker Index: Use proxy registry (specified above)",
                (
                    "HTTP → Authentication: Username, any user name, the pull token as "
                    "the password"
                ),
                (
                    "Add the repository to a docker (group) repository or give it its "
                    "own HTTP(S) connector"
                ),
            ),
        ),
        CacheRecipe(
            "Google Artifact Registry",
            "Remote repository (format Docker, custom repository)",
            (
                f"Custom repository URL: {registry}",
                (
                    "Authentication: username and password; store the pull token "
                    "as a Secret Manager secret and grant the Artifact Registry "
                    "service agent access to it"
                ),
                (
                    "Pull through it: <location>-docker.pkg.dev/<project>/"
                    "<remote-repo>/<repository>:<tag>"
                ),
            ),
        ),
        CacheRecipe(
            "Cloudsmith",
            "Upstream (Docker) on a repository",
            (
                f"Upstream URL: {registry}",
                "Authentication: username and password, the pull token as the password",
                "Mode: cache and proxy",
            ),
        ),
    )


def requirements(settings: Settings) -> NetworkRequirements:
    """The network requirements of the registry that ``settings`` describe."""
    base = registry_url(settings)
    registry = _endpoint(
        "registry", base, "the registry API, the token service and signing keys"
    )
    endpoints = [registry]
    realm = settings.auth.realm
    if settings.auth.mode == "token" and realm:
        token = _endpoint("token realm", realm, "the Docker token service (realm)")
        if (token.host, token.port) != (registry.host, registry.port):
            endpoints.append(token)
    storage = settings.storage
    redirects = isinstance(storage, S3Storage) and storage.redirect
    if isinstance(storage, S3Storage) and redirects:
        store_url = storage.endpoint_url or f"https://s3.{storage.region}.amazonaws.com"
        store = _endpoint(
            "object store",
            store_url,
            "blob downloads: blob GETs answer 307 to presigned URLs here",
        )
        endpoints.append(store)
        redirect_note = (
            f"Blob GETs answer 307 to a presigned URL on {store.host} (the S3 object "
            "store, storage.redirect = true): clients must reach it as well, and "
            "proxies must pass the redirect and its query string untouched."
        )
    elif isinstance(storage, S3Storage):
        redirect_note = (
            "Blobs are served by the registry itself (S3 storage with "
            "storage.redirect = false): clients need no other host for layers."
        )
    else:
        redirect_note = (
            "Blobs are served by the registry itself: the filesystem storage backend "
            "cannot redirect, so no other host is needed for layers."
        )
    if registry.tls:
        tls_note = (
            f"HTTPS on port {registry.port}. Clients verify the server certificate "
            f"against their trust store and the name {registry.host}; the registry "
            "does not use client certificates."
        )
    else:
        tls_note = (
            "Plain HTTP: no TLS. Clients must mark the registry insecure "
            "(podman/skopeo --tls-verify=false, containerd plain-http). Serve HTTPS "
            "(server.tls_cert and server.tls_key, or a TLS-terminating proxy with "
            "server.public_url) before exposing it."
        )
    allowlist = (
        *(
            f"allow TCP from clients to {e.host} port {e.port} ({e.role})"
            for e in endpoints
        ),
        (
            f"HTTP proxies and TLS inspection: allow {registry.url}/v2/ and "
            f"{registry.url}/token with their query strings and the "
            "Authorization header"
        ),
        "Name resolution: clients must resolve "
        + ", ".join(sorted({e.host for e in endpoints})),
    )
    if settings.auth.mode == "token":
        credentials = (
            "Give the cache a pull token (cargohold tokens create); it pulls what the "
            "token's grant allows. Without credentials the cache pulls anonymously."
        )
    else:
        credentials = "Authentication is off (auth.mode = none): no credentials needed."
    starters = settings.auth.starter_tags
    return NetworkRequirements(
        registry_host=settings.server.public_host,
        endpoints=tuple(endpoints),
        paths=_PATHS,
        blob_redirects=redirects,
        blob_redirect_note=redirect_note,
        tls_note=tls_note,
        allowlist=allowlist,
        caches=_caches(base, settings.server.public_host),
        cache_credentials=credentials,
        starter_tags=starters,
        starter_note=(
            "A starter-tier cache (no credentials) sees only the starter tags ("
            + ", ".join(starters)
            + ") of public repositories; private repositories and other tags answer "
            "401 to it."
        ),
    )


def render_text(req: NetworkRequirements) -> str:
    """The requirements as plain text, for a terminal or a ticket to a firewall team."""
    lines = [f"Network requirements for {req.registry_host}", "", "Connect to:"]
    lines += [
        f"  {e.role}: {e.url}  (TCP {e.port}, {'TLS' if e.tls else 'no TLS'}) "
        f"- {e.purpose}"
        for e in req.endpoints
    ]
    lines += ["", "Paths:"]
    lines += [f"  {p.path}  {p.purpose}" for p in req.paths]
    lines += ["", f"Blob redirects: {'yes' if req.blob_redirects else 'no'}. "]
    lines[-1] += req.blob_redirect_note
    lines += ["", f"TLS: {req.tls_note}", "", "Allowlist:"]
    lines += [f"  {rule}" for rule in req.allowlist]
    lines += ["", "Pull-through caches:", f"  {req.cache_credentials}"]
    lines += [f"  {req.starter_note}"]
    for cache in req.caches:
        lines += [f"  {cache.product}: {cache.kind}"]
        lines += [f"    - {step}" for step in cache.steps]
    return "\n".join(lines) + "\n"
