"""``docker-credential-cargohold``: the Docker credential-helper protocol over a file.

The protocol is docker/docker-credential-helpers ``credentials/credentials.go``: the
action is the only argument, input comes on stdin, output and errors go to stdout, and
any error exits 1.

- ``store``: stdin is ``{"ServerURL", "Username", "Secret"}`` JSON.
- ``get``: stdin is a server URL; prints the credentials JSON, or
  ``credentials not found in native keychain``.
- ``erase``: stdin is a server URL; deletes its entry.
- ``list``: prints ``{"<server URL>": "<username>", ...}``.
- ``version``: prints ``docker-credential-cargohold (cargohold) <version>``.

Entries live in ``$CARGOHOLD_CREDENTIALS_FILE``, else
``~/.config/cargohold/credentials.json`` (mode 0600, written atomically), keyed by the
server URL without scheme or trailing slash, the way docker matches them.

Also the client side, ``run_helper``, which ``login`` uses to hand credentials to the
helper a docker config names.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cargohold import __version__
from cargohold.credentials.authfile import (
    AuthFileError,
    normalize_server_url,
    read_config,
    write_config,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

NAME = "docker-credential-cargohold"
STORE_ENV = "CARGOHOLD_CREDENTIALS_FILE"
NOT_FOUND = "credentials not found in native keychain"
MISSING_SERVER_URL = "no credentials server URL"
MISSING_USERNAME = "no credentials username"
_ENTRIES = "credentials"
_HELPER_TIMEOUT = 60.0


class HelperError(Exception):
    """A protocol error; its message is what the helper prints before exiting 1."""


class CredentialsNotFoundError(HelperError):
    def __init__(self) -> None:
        super().__init__(NOT_FOUND)


@dataclass(frozen=True, slots=True)
class Credentials:
    server_url: str
    username: str
    secret: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "ServerURL": self.server_url,
                "Username": self.username,
                "Secret": self.secret,
            }
        )

    @classmethod
    def parse(cls, text: str) -> Credentials:
        """The ``store`` payload. Field names match case-insensitively, as in Go.

        Raises:
            HelperError: not a JSON object of strings, or no server URL or username.
        """
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HelperError(f"invalid credentials JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise HelperError("invalid credentials JSON: expected an object")
        fields = {str(key).lower(): value for key, value in document.items()}
        values: dict[str, str] = {}
        for name in ("serverurl", "username", "secret"):
            value = fields.get(name)
            if value is None:  # absent or null: Go's zero value
                value = ""
            if not isinstance(value, str):
                raise HelperError(f"invalid credentials JSON: {name} must be a string")
            values[name] = value
        if not values["serverurl"]:
            raise HelperError(MISSING_SERVER_URL)
        if not values["username"]:
            raise HelperError(MISSING_USERNAME)
        return cls(values["serverurl"], values["username"], values["secret"])


def store_path(environ: Mapping[str, str], home: Path) -> Path:
    if explicit := environ.get(STORE_ENV):
        return Path(explicit)
    return home / ".config" / "cargohold" / "credentials.json"


@dataclass(frozen=True, slots=True)
class FileCredentialStore:
    """Credentials in one JSON file: ``{"credentials": {key: {ServerURL, ...}}}``."""

    path: Path

    def _load(self) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            document = read_config(self.path)
        except AuthFileError as exc:
            raise HelperError(str(exc)) from exc
        entries = document.setdefault(_ENTRIES, {})
        if not isinstance(entries, dict):
            raise HelperError(f"{self.path}: {_ENTRIES!r} must be a JSON object")
        return document, entries

    def add(self, credentials: Credentials) -> None:
        document, entries = self._load()
        entries[normalize_server_url(credentials.server_url)] = {
            "ServerURL": credentials.server_url,
            "Username": credentials.username,
            "Secret": credentials.secret,
        }
        write_config(self.path, document)

    def get(self, server_url: str) -> tuple[str, str]:
        """``(username, secret)`` stored for ``server_url``."""
        _, entries = self._load()
        entry = entries.get(normalize_server_url(server_url))
        if not isinstance(entry, dict):
            raise CredentialsNotFoundError
        username, secret = entry.get("Username"), entry.get("Secret")
        if not (isinstance(username, str) and isinstance(secret, str)):
            raise CredentialsNotFoundError
        return username, secret

    def delete(self, server_url: str) -> None:
        document, entries = self._load()
        if entries.pop(normalize_server_url(server_url), None) is None:
            raise CredentialsNotFoundError
        write_config(self.path, document)

    def list(self) -> dict[str, str]:
        _, entries = self._load()
        return {
            str(entry.get("ServerURL") or key): str(entry.get("Username", ""))
            for key, entry in entries.items()
            if isinstance(entry, dict)
        }


def _server_url(stdin: str) -> str:
    server_url = stdin.strip()
    if not server_url:
        raise HelperError(MISSING_SERVER_URL)
    return server_url


def version_line() -> str:
    return f"{NAME} (cargohold) {__version__}"


def handle(action: str, stdin: str, store: FileCredentialStore) -> str:
    """Run one protocol action; returns what to print.

    Raises:
        HelperError: the message to print before exiting 1.
    """
    match action:
        case "store":
            store.add(Credentials.parse(stdin))
            return ""
        case "get":
            server_url = _server_url(stdin)
            username, secret = store.get(server_url)
            return Credentials(server_url, username, secret).to_json() + "\n"
        case "erase":
            store.delete(_server_url(stdin))
            return ""
        case "list":
            return json.dumps(store.list()) + "\n"
        case "version":
            return version_line() + "\n"
        case _:
            raise HelperError(f"{NAME}: unknown action: {action}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``docker-credential-cargohold``."""
    args = list(sys.argv[1:] if argv is None else argv)
    usage = f"Usage: {NAME} <store|get|erase|list|version>"
    if len(args) != 1:
        print(usage)  # noqa: T201 - the protocol speaks on stdout
        return 1
    action = args[0]
    if action in {"--version", "-v"}:
        print(version_line())  # noqa: T201
        return 0
    if action in {"--help", "-h"}:
        print(usage)  # noqa: T201
        return 0
    store = FileCredentialStore(store_path(os.environ, Path.home()))
    stdin = sys.stdin.read() if action in {"store", "get", "erase"} else ""
    try:
        output = handle(action, stdin, store)
    except (HelperError, OSError) as exc:
        print(exc)  # noqa: T201
        return 1
    sys.stdout.write(output)
    return 0


# --- the client side ------------------------------------------------------------------


def run_helper(name: str, action: str, payload: str) -> str:
    """Run ``docker-credential-<name> <action>`` with ``payload`` on stdin.

    Returns its stdout. Raises ``CredentialsNotFoundError`` for the protocol's
    not-found answer and ``HelperError`` for any other failure.
    """
    program = shutil.which(f"docker-credential-{name}")
    if program is None:
        raise HelperError(f"docker-credential-{name} is not installed (not on PATH)")
    try:
        completed = subprocess.run(  # noqa: S603 - a helper the user's config names
            [program, action],
            input=payload,
            capture_output=True,
            text=True,
            timeout=_HELPER_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HelperError(f"docker-credential-{name} {action}: {exc}") from exc
    if completed.returncode != 0:
        message = (completed.stdout or completed.stderr).strip()
        if message == NOT_FOUND:
            raise CredentialsNotFoundError
        raise HelperError(f"docker-credential-{name} {action}: {message}")
    return completed.stdout
