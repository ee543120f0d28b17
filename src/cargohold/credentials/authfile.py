"""The auth files clients read: containers ``auth.json`` and docker ``config.json``.

Both hold ``{"auths": {"host:port": {"auth": base64("user:password")}}}`` beside other
keys this module must keep (``credsStore``, ``credHelpers``, ``proxies``, ...). Updates
are pure functions over the parsed document; ``write_config`` replaces the file
atomically (temporary file + rename), mode 0600, creating missing directories 0700.

Must not: prompt, print or talk to a registry (``login`` does that).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Mapping

AUTHS = "auths"
_FILE_MODE = 0o600
_DIR_MODE = 0o700


class AuthFileError(Exception):
    """An auth file that cannot be read or is not the expected JSON shape."""


# --- server names ---------------------------------------------------------------------


def registry_host(server: str) -> str:
    """``host[:port]`` of a registry reference, as docker's ``ConvertToHostname``.

    ``https://Registry.example:5000/v1/`` and ``registry.example:5000/ns`` both give
    ``registry.example:5000``. Host names are case-insensitive, so the result is lower
    case.
    """
    text = server.strip()
    if "://" in text:
        with contextlib.suppress(ValueError):
            netloc = urlsplit(text).netloc
            if netloc:
                return netloc.rpartition("@")[2].lower()
        text = text.partition("://")[2]
    return text.partition("/")[0].lower()


def normalize_server_url(server: str) -> str:
    """A server URL without scheme or trailing slash, host lower-cased.

    This is how credential-helper entries match: ``https://r.example/`` and
    ``r.example`` name the same server, ``r.example/ns`` a different one.
    """
    text = server.strip()
    scheme, sep, rest = text.partition("://")
    if sep and scheme.lower() in {"http", "https"}:
        text = rest
    text = text.rstrip("/")
    host, slash, path = text.partition("/")
    return host.lower() + slash + path


def _names_host(key: str, host: str) -> bool:
    """Whether an ``auths`` key is an entry for exactly ``host`` (not ``host/ns``)."""
    if normalize_server_url(key) == host:
        return True
    # Legacy URL-shaped keys (``https://host/v1/``) stand for the whole host.
    return "://" in key and registry_host(key) == host


# --- locations ------------------------------------------------------------------------


def containers_auth_path(environ: Mapping[str, str], home: Path) -> Path:
    """Where podman, skopeo and buildah keep credentials (containers-auth.json(5))."""
    if explicit := environ.get("REGISTRY_AUTH_FILE"):
        return Path(explicit)
    if runtime_dir := environ.get("XDG_RUNTIME_DIR"):
        return Path(runtime_dir) / "containers" / "auth.json"
    return home / ".config" / "containers" / "auth.json"


def docker_config_path(environ: Mapping[str, str], home: Path) -> Path:
    """Docker's ``config.json``: in ``$DOCKER_CONFIG``, else ``~/.docker``."""
    if config_dir := environ.get("DOCKER_CONFIG"):
        return Path(config_dir) / "config.json"
    return home / ".docker" / "config.json"


# --- reading and writing --------------------------------------------------------------


def read_config(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; ``{}`` when the file is missing or empty.

    Raises:
        AuthFileError: unreadable, not JSON, not an object, or ``auths`` not an object.
            The file is never overwritten in that case.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise AuthFileError(f"{path}: cannot read: {exc}") from exc
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AuthFileError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise AuthFileError(f"{path}: expected a JSON object")
    if not isinstance(document.get(AUTHS, {}), dict):
        raise AuthFileError(f"{path}: {AUTHS!r} must be a JSON object")
    return document


def write_config(path: Path, document: Mapping[str, Any]) -> Path:
    """Replace ``path`` with ``document`` atomically, mode 0600; returns the file.

    A symlinked file is written through (its target is replaced), as docker does, so
    dotfile managers keep working. Missing directories are created with mode 0700.
    """
    target = path.resolve() if path.is_symlink() else path
    _make_private_dirs(target.parent)
    data = json.dumps(document, indent="\t") + "\n"
    fd, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temporary).replace(target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(temporary).unlink()
        raise
    _fsync_directory(target.parent)
    return target


def _make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and missing parents 0700; existing ones are left alone."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for item in reversed(missing):
        with contextlib.suppress(FileExistsError):
            item.mkdir(mode=_DIR_MODE)
            item.chmod(_DIR_MODE)  # mkdir's mode is filtered by the umask


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable; some filesystems cannot fsync a directory."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --- entries --------------------------------------------------------------------------


def encode_auth(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def decode_auth(value: str) -> tuple[str, str]:
    """``(username, password)`` from an ``auth`` field.

    Raises:
        AuthFileError: not base64, or no ``:`` separator.
    """
    try:
        text = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise AuthFileError(f"invalid auth field: {exc}") from exc
    username, sep, password = text.partition(":")
    if not sep:
        raise AuthFileError("invalid auth field: no ':' between user and password")
    return username, password


def _auths(document: Mapping[str, Any]) -> dict[str, Any]:
    auths = document.get(AUTHS, {})
    return auths if isinstance(auths, dict) else {}


def get_auth(document: Mapping[str, Any], host: str) -> tuple[str, str] | None:
    """The stored ``(username, password)`` for ``host``, if any."""
    for key, entry in _auths(document).items():
        if not (_names_host(key, host) and isinstance(entry, dict)):
            continue
        if isinstance(auth := entry.get("auth"), str) and auth:
            return decode_auth(auth)
        username, password = entry.get("username"), entry.get("password")
        if isinstance(username, str) and isinstance(password, str):
            return username, password
    return None


def with_auth(
    document: Mapping[str, Any], host: str, username: str, password: str | None
) -> dict[str, Any]:
    """A copy of ``document`` whose only entry for ``host`` holds these credentials.

    Other spellings of the same host (``https://host``) are dropped so they cannot
    shadow the new entry. ``password=None`` writes the empty entry docker keeps when a
    credential helper holds the secret.
    """
    updated, _ = without_auth(document, host)
    entry = {} if password is None else {"auth": encode_auth(username, password)}
    updated.setdefault(AUTHS, {})[host] = entry
    return updated


def without_auth(document: Mapping[str, Any], host: str) -> tuple[dict[str, Any], bool]:
    """A copy of ``document`` without ``host``'s entries; and whether any existed."""
    updated = copy.deepcopy(dict(document))
    auths = _auths(updated)
    stale = [key for key in auths if _names_host(key, host)]
    for key in stale:
        del auths[key]
    return updated, bool(stale)


def credential_helper(document: Mapping[str, Any], host: str) -> str | None:
    """The helper named for ``host``: in ``credHelpers``, else ``credsStore``."""
    helpers = document.get("credHelpers")
    if isinstance(helpers, dict):
        for key, name in helpers.items():
            if _names_host(key, host) and isinstance(name, str) and name:
                return name
    store = document.get("credsStore")
    return store if isinstance(store, str) and store else None
