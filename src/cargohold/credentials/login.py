"""``cargohold login`` and ``logout``: check credentials, then store them for clients.

Login first proves the credentials against the registry's Docker token auth
(distribution ``docs/spec/auth/token.md``): ``GET /v2/`` answers 401 with a ``Bearer``
challenge, and the challenge's realm answers 200 with a token for HTTP Basic
credentials. Only then are they written to the containers auth file and, unless
``--no-docker``, docker's config (or the credential helper it names).

httpx is imported only when a command runs, so ``cargohold --help`` stays quick.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import click

from cargohold.credentials.authfile import (
    AuthFileError,
    containers_auth_path,
    credential_helper,
    docker_config_path,
    read_config,
    registry_host,
    with_auth,
    without_auth,
    write_config,
)
from cargohold.credentials.helper import (
    CredentialsNotFoundError,
    HelperError,
    run_helper,
)

if TYPE_CHECKING:
    import httpx

_TIMEOUT = 30.0
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_PARAM = re.compile(
    r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|$)'
)


class LoginError(click.ClickException):
    """Login or logout failed; click prints ``Error: <message>`` and exits 1."""


# --- talking to the registry ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: scheme (lower case) and its parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, header: str) -> Challenge:
        """The first challenge in ``header`` (RFC 9110 section 11.6.1)."""
        scheme, _, rest = header.strip().partition(" ")
        params: dict[str, str] = {}
        position = 0
        while position < len(rest) and (match := _PARAM.match(rest, position)):
            name, quoted, token = match.groups()
            value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else token
            params[name.lower()] = value
            position = match.end()
        return cls(scheme.lower(), params)


@dataclass(frozen=True, slots=True)
class Verified:
    """How the registry answered: its base URL, and whether it asks for credentials."""

    base_url: str
    auth_enabled: bool


def _is_loopback(host: str) -> bool:
    name = urlsplit(f"//{host}").hostname or ""
    return name in _LOOPBACK


def candidate_urls(host: str, *, insecure: bool) -> list[str]:
    """HTTPS, then plain HTTP only for loopback hosts or with ``--insecure``."""
    urls = [f"https://{host}"]
    if insecure or _is_loopback(host):
        urls.append(f"http://{host}")
    return urls


def _error_message(response: httpx.Response) -> str:
    """The first OCI/Docker error message in a response body, else its status."""
    try:
        errors = response.json().get("errors") or []
        message = errors[0].get("message") or errors[0].get("code")
    except (ValueError, AttributeError, IndexError, TypeError):
        message = None
    status = response.status_code
    return f"{status} ({message})" if message else str(status)


def verify_credentials(
    client: httpx.Client, host: str, username: str, password: str, *, insecure: bool
) -> Verified:
    """Prove ``username``/``password`` against ``host``.

    Raises:
        LoginError: unreachable, not a registry, or the credentials are refused.
    """
    import httpx  # noqa: PLC0415 - see the module docstring

    failures: list[str] = []
    for base_url in candidate_urls(host, insecure=insecure):
        try:
            response = client.get(f"{base_url}/v2/")
        except httpx.TransportError as exc:
            failures.append(f"{base_url}: {exc or type(exc).__name__}")
            continue
        return _answer_challenge(
            client, base_url, response, username, password, insecure=insecure
        )
    hint = "" if insecure else " (pass --insecure to allow plain HTTP)"
    raise LoginError(f"cannot reach {host}: {'; '.join(failures)}{hint}")


def _answer_challenge(
    client: httpx.Client,
    base_url: str,
    response: httpx.Response,
    username: str,
    password: str,
    *,
    insecure: bool,
) -> Verified:
    import httpx  # noqa: PLC0415

    if response.status_code == httpx.codes.OK:
        return Verified(base_url, auth_enabled=False)
    if response.status_code != httpx.codes.UNAUTHORIZED:
        raise LoginError(
            f"{base_url}/v2/ answered {_error_message(response)}; "
            "is this a container registry?"
        )
    challenge = Challenge.parse(response.headers.get("WWW-Authenticate", ""))
    try:
        if challenge.scheme == "bearer":
            answer = _request_token(
                client, base_url, challenge, username, password, insecure=insecure
            )
        elif challenge.scheme == "basic":
            answer = client.get(f"{base_url}/v2/", auth=(username, password))
        else:
            raise LoginError(f"{base_url}/v2/ sent no Bearer or Basic challenge")
    except httpx.TransportError as exc:
        raise LoginError(f"login to {base_url} failed: {exc}") from exc
    if answer.status_code == httpx.codes.UNAUTHORIZED:
        raise LoginError(f"login to {base_url} failed: incorrect username or password")
    if answer.status_code != httpx.codes.OK:
        raise LoginError(f"{answer.request.url} answered {_error_message(answer)}")
    if challenge.scheme == "bearer" and not _has_token(answer):
        raise LoginError(f"{answer.request.url} answered 200 without a token")
    return Verified(base_url, auth_enabled=True)


def _request_token(
    client: httpx.Client,
    base_url: str,
    challenge: Challenge,
    username: str,
    password: str,
    *,
    insecure: bool,
) -> httpx.Response:
    """``GET realm?service=...&account=<user>`` with Basic credentials (token.md)."""
    realm = challenge.params.get("realm")
    if not realm:
        raise LoginError(f"{base_url}/v2/ sent a Bearer challenge without a realm")
    realm = urljoin(f"{base_url}/v2/", realm)
    parts = urlsplit(realm)
    if parts.scheme not in {"http", "https"}:
        raise LoginError(f"token realm {realm!r} is not an HTTP URL")
    if parts.scheme == "http" and not insecure and not _is_loopback(parts.netloc):
        raise LoginError(
            f"token realm {realm} would receive your password over plain HTTP; "
            "pass --insecure to allow it"
        )
    params = {"account": username}
    if service := challenge.params.get("service"):
        params["service"] = service
    return client.get(realm, params=params, auth=(username, password))


def _has_token(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    token = body.get("token") or body.get("access_token")
    return isinstance(token, str) and bool(token)


# --- storing --------------------------------------------------------------------------


def _store(path: Path, host: str, username: str, password: str) -> str:
    """Save the credentials for ``host`` in ``path`` (or its helper); says where.

    Raises:
        AuthFileError, HelperError, OSError: nothing was stored in this place.
    """
    document = read_config(path)
    helper = credential_helper(document, host)
    if helper is None:
        written = write_config(path, with_auth(document, host, username, password))
        return f"Stored credentials for {host} in {written}"
    payload = {"ServerURL": host, "Username": username, "Secret": password}
    run_helper(helper, "store", json.dumps(payload))
    # What docker itself does with a helper: an entry without secrets, so clients
    # list the login, and no stale plaintext entry for the host left behind.
    write_config(path, with_auth(document, host, username, None))
    return (
        f"Stored credentials for {host} with docker-credential-{helper} "
        f"(named in {path}; no password written there)"
    )


def _erase(path: Path, host: str) -> str | None:
    """Remove ``host`` from ``path`` and its helper; says what was removed, if any."""
    document = read_config(path)
    helper = credential_helper(document, host)
    removed: list[str] = []
    if helper is not None:
        try:
            run_helper(helper, "erase", host)
        except CredentialsNotFoundError:
            pass
        else:
            removed.append(f"docker-credential-{helper}")
    updated, found = without_auth(document, host)
    if found:
        write_config(path, updated)
        removed.append(str(path))
    if not removed:
        return None
    return f"Removed credentials for {host} from {' and '.join(removed)}"


def _targets(authfile: Path | None, *, docker: bool) -> list[Path]:
    environ, home = os.environ, Path.home()
    paths = [authfile or containers_auth_path(environ, home)]
    if docker:
        docker_path = docker_config_path(environ, home)
        if docker_path not in paths:
            paths.append(docker_path)
    return paths


def _read_password(*, password_stdin: bool) -> str:
    if not password_stdin:
        return str(click.prompt("Password", hide_input=True))
    text = sys.stdin.read()
    # Like docker: the trailing newline of ``echo $TOKEN |`` is not part of it.
    return text.removesuffix("\n").removesuffix("\r")


# --- commands -------------------------------------------------------------------------

registry_argument = click.argument("registry")
authfile_option = click.option(
    "--authfile",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Containers auth file (default: $REGISTRY_AUTH_FILE, "
    "$XDG_RUNTIME_DIR/containers/auth.json or ~/.config/containers/auth.json).",
)
docker_option = click.option(
    "--docker/--no-docker",
    default=True,
    show_default=True,
    help="Also update docker's config.json (in $DOCKER_CONFIG or ~/.docker).",
)


@click.command()
@registry_argument
@click.option("-u", "--username", help="Prompted for when not given.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@authfile_option
@docker_option
@click.option(
    "--insecure",
    is_flag=True,
    help="Allow plain HTTP and skip TLS verification (HTTP is always tried for "
    "localhost).",
)
def login(
    registry: str,
    username: str | None,
    authfile: Path | None,
    *,
    password_stdin: bool,
    docker: bool,
    insecure: bool,
) -> None:
    """Check credentials for REGISTRY, then store them for podman, skopeo and docker."""
    import httpx  # noqa: PLC0415 - see the module docstring

    host = _host(registry)
    username, password = _ask_credentials(username, password_stdin=password_stdin)
    with httpx.Client(verify=not insecure, timeout=_TIMEOUT) as client:
        verified = verify_credentials(
            client, host, username, password, insecure=insecure
        )
    if not verified.auth_enabled:
        click.echo(
            f"Note: {host} does not ask for credentials (authentication is disabled); "
            "storing them anyway."
        )
    if verified.base_url.startswith("http:"):
        click.echo(
            f"Warning: {host} speaks plain HTTP; the password was not encrypted."
        )
    _store_everywhere(_targets(authfile, docker=docker), host, username, password)
    click.echo("Login Succeeded")


def _host(registry: str) -> str:
    host = registry_host(registry)
    if not host:
        raise click.BadParameter("no host name", param_hint="REGISTRY")
    return host


def _ask_credentials(username: str | None, *, password_stdin: bool) -> tuple[str, str]:
    if password_stdin and not username:
        raise click.UsageError("--password-stdin needs --username")
    if username is None:
        username = str(click.prompt("Username"))
    if not username or ":" in username:
        raise click.BadParameter("empty, or contains ':'", param_hint="username")
    password = _read_password(password_stdin=password_stdin)
    if not password:
        raise LoginError("the password is empty")
    return username, password


def _store_everywhere(
    paths: list[Path], host: str, username: str, password: str
) -> None:
    stored = 0
    for path in paths:
        try:
            click.echo(_store(path, host, username, password))
            stored += 1
        except (AuthFileError, HelperError, OSError) as exc:
            click.echo(f"Warning: not stored in {path}: {exc}", err=True)
    if not stored:
        raise LoginError("the credentials were verified but could not be stored")


@click.command()
@registry_argument
@authfile_option
@docker_option
def logout(registry: str, authfile: Path | None, *, docker: bool) -> None:
    """Remove the stored credentials for REGISTRY."""
    host = _host(registry)
    found = False
    for path in _targets(authfile, docker=docker):
        try:
            message = _erase(path, host)
        except (AuthFileError, HelperError, OSError) as exc:
            raise LoginError(f"{path}: {exc}") from exc
        if message:
            click.echo(message)
            found = True
    if not found:
        raise LoginError(f"not logged in to {host}")
