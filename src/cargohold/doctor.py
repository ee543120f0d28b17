"""``cargohold doctor``: a client-side check of the path to a registry, step by step.

Owns: resolving, connecting, TLS (certificate and name), ``GET /v2/``, the token realm
named by the challenge, and one manifest and one blob of an image (following a
redirect), each reported as a ``Step`` with what to do when it fails. Works against any
OCI registry, not only cargohold.

Must not: write anything to the registry, or send credentials to a redirect target.
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator
    from pathlib import Path

_MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
_INDEX_TYPES = frozenset(_MANIFEST_TYPES[::2])
_BROKEN = "the image is broken, or a proxy rewrote the answer: ask its publisher"
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class DoctorUsageError(ValueError):
    """The registry or image argument cannot be understood."""


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    status: str  # "ok", "FAIL" or "skip"
    detail: str
    advice: str = ""


@dataclass(frozen=True, slots=True)
class Target:
    """Where and what to check."""

    url: str  # scheme://host[:port]
    host: str
    port: int
    tls: bool
    repository: str | None = None
    tag: str | None = None

    @classmethod
    def parse(cls, registry: str, image: str | None) -> Target:
        raw = registry if "://" in registry else f"https://{registry}"
        parts = urlsplit(raw)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            msg = f"{registry!r}: expected HOST[:PORT] or an http(s) URL"
            raise DoctorUsageError(msg)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            msg = f"{registry!r}: bad port"
            raise DoctorUsageError(msg) from exc
        repository = tag = None
        if image is not None:
            repository, _, tag = image.rpartition(":")
            if not repository or not tag or "/" in tag or "@" in image:
                msg = f"--image {image!r}: expected REPOSITORY:TAG"
                raise DoctorUsageError(msg)
        return cls(
            url=f"{parts.scheme}://{parts.netloc}",
            host=parts.hostname,
            port=port,
            tls=parts.scheme == "https",
            repository=repository,
            tag=tag,
        )


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str


class _Failed(Exception):
    """A step failed; later steps that depend on it are skipped."""


class Doctor:
    """Runs the checks in order; ``run()`` yields each step as it finishes."""

    def __init__(
        self,
        target: Target,
        *,
        credentials: Credentials | None = None,
        ca_file: Path | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._target = target
        self._credentials = credentials
        self._timeout = timeout
        self._ssl = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._token: str | None = None
        self._challenge = ""
        self._basic = False  # the registry asks for Basic auth, not a token
        self._failed = Step("?", "FAIL", "")
        self._client = httpx.Client(
            verify=self._ssl, timeout=self._timeout, follow_redirects=False
        )

    def run(self) -> Iterator[Step]:
        checks = [self._resolve, self._connect]
        if self._target.tls:
            checks.append(self._tls)
        checks += [self._version_check, self._manifest_and_blob]
        with self._client:
            for index, check in enumerate(checks):
                try:
                    yield from check()
                except _Failed:
                    for later in checks[index + 1 :]:
                        name = later.__name__.strip("_").replace("_", " ")
                        yield Step(name, "skip", "not run: an earlier step failed")
                    return

    def _fail(self, name: str, detail: str, advice: str) -> _Failed:
        self._failed = Step(name, "FAIL", detail, advice)
        return _Failed()

    # -- network ----------------------------------------------------------------

    def _resolve(self) -> Iterator[Step]:
        t = self._target
        try:
            infos = socket.getaddrinfo(t.host, t.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            yield Step(
                "resolve",
                "FAIL",
                f"{t.host}: {exc.strerror}",
                f"check the name, DNS and /etc/hosts; allow resolving {t.host}",
            )
            raise _Failed from exc
        addresses = sorted({str(info[4][0]) for info in infos})
        yield Step("resolve", "ok", f"{t.host} → {', '.join(addresses)}")

    def _connect(self) -> Iterator[Step]:
        t = self._target
        try:
            with socket.create_connection((t.host, t.port), timeout=self._timeout):
                pass
        except TimeoutError as exc:
            yield Step(
                "connect",
                "FAIL",
                f"{t.host}:{t.port}: no answer in {self._timeout:g} s",
                f"a firewall drops the connection: allow TCP to {t.host} port {t.port}",
            )
            raise _Failed from exc
        except OSError as exc:
            yield Step(
                "connect",
                "FAIL",
                f"{t.host}:{t.port}: {exc.strerror or exc}",
                f"nothing listens on {t.host} port {t.port}, or a firewall rejects "
                "it: check the port, that the registry runs, and the firewall",
            )
            raise _Failed from exc
        yield Step("connect", "ok", f"TCP {t.host}:{t.port}")

    def _tls(self) -> Iterator[Step]:
        t = self._target
        try:
            with (
                socket.create_connection(
                    (t.host, t.port), timeout=self._timeout
                ) as raw,
                self._ssl.wrap_socket(raw, server_hostname=t.host) as sock,
            ):
                cert = sock.getpeercert() or {}
                version = sock.version()
        except ssl.SSLCertVerificationError as exc:
            reason = exc.verify_message or str(exc)
            if "mismatch" in reason.lower():
                advice = (
                    f"the certificate does not name {t.host}: connect by a name it "
                    "carries, or reissue it with this name in subjectAltName"
                )
            else:
                advice = (
                    "the client does not trust the certificate: install the "
                    "registry's CA in the system trust store (or pass --ca-file); "
                    "replace an expired certificate"
                )
            yield Step("tls", "FAIL", f"certificate not accepted: {reason}", advice)
            raise _Failed from exc
        except (ssl.SSLError, OSError) as exc:
            yield Step(
                "tls",
                "FAIL",
                f"TLS handshake failed: {exc}",
                "the port may speak plain HTTP (try http://), or a proxy "
                "intercepts TLS",
            )
            raise _Failed from exc
        expires = cert.get("notAfter", "?")
        yield Step(
            "tls", "ok", f"{version}, certificate for {t.host} valid to {expires}"
        )

    # -- registry API -------------------------------------------------------------

    def _get(self, name: str, url: str, **kwargs: object) -> httpx.Response:
        try:
            return self._client.get(url, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise self._fail(
                name,
                f"GET {url}: {type(exc).__name__}: {exc}",
                "check that nothing between here and the registry blocks or "
                "rewrites HTTP (proxy, TLS inspection)",
            ) from exc

    def _version_check(self) -> Iterator[Step]:
        try:
            yield from self._version_check_steps()
        except _Failed:
            yield self._failed
            raise

    def _version_check_steps(self) -> Iterator[Step]:
        url = f"{self._target.url}/v2/"
        response = self._get("GET /v2/", url)
        api = response.headers.get("Docker-Distribution-API-Version", "none")
        if response.status_code == httpx.codes.OK:
            yield Step("GET /v2/", "ok", f"200, no authentication (API {api})")
            return
        challenge = response.headers.get("WWW-Authenticate", "")
        if response.status_code != httpx.codes.UNAUTHORIZED or not challenge:
            raise self._fail(
                "GET /v2/",
                f"{response.status_code} (expected 200 or 401 with a challenge)",
                "this is not an OCI registry at this address, or a proxy answers "
                "in its place: check the URL and the proxy",
            )
        yield Step("GET /v2/", "ok", f"401 with challenge {challenge!r} (API {api})")
        self._challenge = challenge
        if not challenge.lower().startswith("bearer "):
            self._basic = True
            return
        yield from self._token_step(scope=None)

    def _token_step(self, scope: str | None) -> Iterator[Step]:
        params = dict(_CHALLENGE_PARAM.findall(self._challenge))
        realm = params.get("realm")
        name = "token" if scope is None else "token (pull scope)"
        if not realm:
            raise self._fail(name, "the challenge names no realm", "a registry bug")
        query = {"service": params["service"]} if "service" in params else {}
        if scope:
            query["scope"] = scope
        auth = self._auth()
        try:
            response = self._client.get(realm, params=query, auth=auth)
        except httpx.HTTPError as exc:
            raise self._fail(
                name,
                f"GET {realm}: {type(exc).__name__}: {exc}",
                f"allow the token realm's host and port ({urlsplit(realm).netloc})",
            ) from exc
        if response.status_code == httpx.codes.UNAUTHORIZED:
            raise self._fail(
                name,
                f"{realm} refused the credentials (401)",
                "check --username/--password, or the pull token (--token)",
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        token = None
        if isinstance(body, dict):
            token = body.get("token") or body.get("access_token")
        if response.status_code != httpx.codes.OK or not isinstance(token, str):
            raise self._fail(
                name,
                f"{realm} answered {response.status_code} without a token",
                "the token service is misconfigured, or a proxy answers in its place",
            )
        self._token = token
        who = "with credentials" if auth else "anonymously"
        yield Step(name, "ok", f"{realm} issued a token {who}")

    def _auth(self) -> httpx.BasicAuth | None:
        c = self._credentials
        return httpx.BasicAuth(c.username, c.password) if c else None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def _manifest_and_blob(self) -> Iterator[Step]:
        t = self._target
        if t.repository is None:
            yield Step("manifest", "skip", "no --image REPOSITORY:TAG given")
            yield Step("blob", "skip", "no --image REPOSITORY:TAG given")
            return
        try:
            if self._token is not None:
                yield from self._token_step(scope=f"repository:{t.repository}:pull")
            digest = yield from self._manifest()
            yield from self._blob(digest)
        except _Failed:
            yield self._failed
            raise

    def _fetch_manifest(self, reference: str) -> httpx.Response:
        t = self._target
        url = f"{t.url}/v2/{t.repository}/manifests/{reference}"
        headers = self._headers() | {"Accept": ", ".join(_MANIFEST_TYPES)}
        auth = self._auth() if self._basic else None
        response = self._get("manifest", url, headers=headers, auth=auth)
        if response.status_code == httpx.codes.OK:
            return response
        image = f"{t.repository}:{t.tag}"
        if response.status_code in {401, 403}:
            advice = (
                "these credentials may not pull it"
                if self._credentials
                else "anonymous callers see only starter tags of public repositories: "
                "pass --username/--password or --token"
            )
            raise self._fail("manifest", f"{image}: {response.status_code}", advice)
        if response.status_code == httpx.codes.NOT_FOUND:
            raise self._fail(
                "manifest",
                f"{image}: 404 (unknown repository or tag)",
                "check the repository name and the tag",
            )
        raise self._fail(
            "manifest",
            f"{image}: {response.status_code}",
            "the registry or a proxy failed: retry, then ask its operator",
        )

    def _manifest(self) -> Generator[Step, None, str]:
        t = self._target
        response = self._fetch_manifest(t.tag or "")
        media_type = response.headers.get("Content-Type", "").split(";")[0]
        detail = f"{t.repository}:{t.tag} {media_type}"
        body = self._json_object(response, detail)
        if media_type in _INDEX_TYPES or "manifests" in body:
            children = body.get("manifests")
            child = children[0] if isinstance(children, list) and children else None
            if not isinstance(child, dict) or not isinstance(child.get("digest"), str):
                raise self._fail("manifest", f"{detail}: empty index", _BROKEN)
            detail += f" → {child['digest']}"
            body = self._json_object(self._fetch_manifest(child["digest"]), detail)
        layers = body.get("layers")
        blob = layers[0] if isinstance(layers, list) and layers else body.get("config")
        if not isinstance(blob, dict) or not isinstance(blob.get("digest"), str):
            raise self._fail("manifest", f"{detail}: names no blob", _BROKEN)
        yield Step("manifest", "ok", detail)
        return str(blob["digest"])

    def _json_object(self, response: httpx.Response, detail: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise self._fail("manifest", f"{detail}: not a JSON object", _BROKEN)
        return body

    def _blob(self, digest: str) -> Iterator[Step]:
        t = self._target
        url = f"{t.url}/v2/{t.repository}/blobs/{digest}"
        auth = self._auth() if self._basic else None
        status, location, size, actual = self._stream(url, self._headers(), auth)
        where = "from the registry"
        if location is not None:
            where = f"through a redirect to {urlsplit(location).netloc} (allow it too)"
            # No credentials: the target is another host (object storage).
            status, _, size, actual = self._stream(location, {}, None)
        if status != httpx.codes.OK:
            raise self._fail(
                "blob",
                f"{digest}: {status} {where}",
                "the blob is missing, or its host is blocked or the redirect "
                "expired: allow the blob host named here",
            )
        algorithm, _, expected = digest.partition(":")
        if algorithm == "sha256" and actual != expected:
            raise self._fail(
                "blob",
                f"{digest}: content has sha256:{actual}",
                "something between here and the registry alters content",
            )
        yield Step("blob", "ok", f"{digest} ({size} bytes) {where}, verified")

    def _stream(
        self, url: str, headers: dict[str, str], auth: httpx.BasicAuth | None
    ) -> tuple[int, str | None, int, str]:
        """GET ``url`` streamed: status, redirect location, size and sha256 (hex)."""
        sha, size = hashlib.sha256(), 0
        try:
            with self._client.stream("GET", url, headers=headers, auth=auth) as resp:
                if resp.is_redirect and resp.next_request is not None:
                    return resp.status_code, str(resp.next_request.url), 0, ""
                if resp.status_code == httpx.codes.OK:
                    for chunk in resp.iter_bytes():
                        sha.update(chunk)
                        size += len(chunk)
                return resp.status_code, None, size, sha.hexdigest()
        except httpx.HTTPError as exc:
            raise self._fail(
                "blob",
                f"GET {url}: {type(exc).__name__}: {exc}",
                f"allow {urlsplit(url).netloc}; check proxies on the way",
            ) from exc
