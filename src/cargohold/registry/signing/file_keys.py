"""``FileKeyStore``: the registry's signing keys as files in ``signing.key_dir``.

Layout (the directory is mode 0700; private keys 0600)::

    keys.json                 every key: id, kind, state, created_at (atomic rewrite)
    .lock                     flock: one process makes or rotates keys at a time
    ecdsa/<id>.key.pem        the active ECDSA P-256 private key (PKCS#8)
    ecdsa/<id>.pub.pem        every ECDSA key's public half (SubjectPublicKeyInfo)
    openpgp/<fpr>.asc         every OpenPGP key's armored public key
    gnupg/                    GNUPGHOME: the active OpenPGP secret key, no passphrase

Making keys is safe when several processes start at once: the first to take the lock
makes them, the others find ``keys.json`` when they get the lock. Rotating makes new
keys of both kinds, marks the old ones *retired* and deletes their private halves; the
public halves stay (listed, and able to verify what they signed). Every read checks
whether ``keys.json`` changed, so a rotation by ``cargohold signing keygen --rotate``
in another process is seen without a restart.

Blocking: key generation and ``openpgp_sign`` run ``gpg``; call them from a thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import gnupg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cargohold.registry.signing.keys import (
    ECDSA_P256,
    OPENPGP,
    EcdsaKey,
    KeyKind,
    KeyState,
    PublicKey,
)

_STATE = "keys.json"
# gpg-agent's socket lives in GNUPGHOME; a Unix socket path has at most 107 bytes.
_SOCKET_ROOM = 80


class SigningKeyError(OSError):
    """The keys cannot be made or used (gpg missing or failing, a file missing)."""


@dataclass(frozen=True, slots=True)
class _Entry:
    key_id: str
    kind: KeyKind
    state: KeyState
    created_at: float


def ecdsa_key_id(public: ec.EllipticCurvePublicKey) -> str:
    """sha256 (hex) of the DER SubjectPublicKeyInfo: the ECDSA key's id."""
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


class FileKeyStore:
    """``KeyStore`` over files in ``root``; ``identity`` names the registry (the
    OpenPGP user id: ``cargohold registry (<identity>)``)."""

    def __init__(
        self, root: Path, *, identity: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.root = root
        self._identity = identity
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._entries: list[_Entry] = []
        self._private: dict[str, ec.EllipticCurvePrivateKey] = {}

    # -- KeyStore ------------------------------------------------------------------

    def public_keys(self) -> list[PublicKey]:
        keys = []
        for entry in self._load():
            if entry.kind == ECDSA_P256:
                path = self.root / "ecdsa" / f"{entry.key_id}.pub.pem"
            else:
                path = self.root / "openpgp" / f"{entry.key_id}.asc"
            keys.append(
                PublicKey(
                    entry.key_id,
                    entry.kind,
                    entry.state,
                    entry.created_at,
                    path.read_text(encoding="ascii"),
                )
            )
        return keys

    def ecdsa(self) -> EcdsaKey:
        key_id = self._active(ECDSA_P256)
        private = self._private.get(key_id)
        if private is None:
            pem = (self.root / "ecdsa" / f"{key_id}.key.pem").read_bytes()
            loaded = serialization.load_pem_private_key(pem, password=None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                msg = f"ecdsa/{key_id}.key.pem is not an ECDSA key"
                raise SigningKeyError(msg)
            private = self._private[key_id] = loaded
        return EcdsaKey(key_id, private)

    def openpgp_fingerprint(self) -> str:
        return self._active(OPENPGP)

    def openpgp_sign(self, data: bytes) -> bytes:
        fingerprint = self._active(OPENPGP)
        with self._gpg() as gpg:
            signed = gpg.sign(data, keyid=fingerprint, binary=True, clearsign=False)
        if not signed.data:
            msg = f"gpg could not sign: {signed.status or signed.stderr[-300:]}"
            raise SigningKeyError(msg)
        return cast("bytes", signed.data)

    # -- making keys ---------------------------------------------------------------

    def exists(self) -> bool:
        return any(entry.state == "active" for entry in self._load())

    def ensure(self) -> bool:
        """Make the keys if there are none (any process, any number at once).

        Returns whether this call made them.
        """
        if self.exists():
            return False
        with self._exclusive():
            if self.exists():
                return False
            self._make(rotate=False)
            return True

    def generate(self, *, rotate: bool) -> list[PublicKey]:
        """Make a new active key of each kind. Without ``rotate`` this refuses
        (``SigningKeyError``) when keys exist; with it the old ones become retired.
        Returns the new active keys."""
        with self._exclusive():
            if self.exists() and not rotate:
                msg = (
                    f"signing keys already exist in {self.root}; "
                    "use --rotate to replace them"
                )
                raise SigningKeyError(msg)
            made = self._make(rotate=rotate)
        return [k for k in self.public_keys() if k.key_id in made]

    def close(self) -> None:
        """Stop the gpg-agent this key directory started, if any, and remove the
        short link to it (a later use makes it again)."""
        home = self.root / "gnupg"
        if home.is_dir():
            with self._gpg_home() as short:
                subprocess.run(  # noqa: S603 - fixed arguments, no shell
                    ["gpgconf", "--homedir", short, "--kill", "gpg-agent"],  # noqa: S607
                    check=False,
                    capture_output=True,
                    timeout=30,
                )
            _unlink_short_link(home)

    # -- internals -----------------------------------------------------------------

    def _active(self, kind: KeyKind) -> str:
        for entry in self._load():
            if entry.kind == kind and entry.state == "active":
                return entry.key_id
        msg = f"no active {kind} signing key in {self.root}"
        raise LookupError(msg)

    def _load(self) -> list[_Entry]:
        path = self.root / _STATE
        try:
            stat = path.stat()
        except FileNotFoundError:
            return []
        seen = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if seen != self._seen:
                raw = json.loads(path.read_text(encoding="utf-8"))
                self._entries = [
                    _Entry(k["key_id"], k["kind"], k["state"], k["created_at"])
                    for k in raw["keys"]
                ]
                self._seen = seen
            return list(self._entries)

    def _save(self, entries: list[_Entry]) -> None:
        body = json.dumps(
            {
                "keys": [
                    {
                        "key_id": e.key_id,
                        "kind": e.kind,
                        "state": e.state,
                        "created_at": e.created_at,
                    }
                    for e in entries
                ]
            },
            indent=2,
        )
        _write_atomic(self.root / _STATE, body.encode(), mode=0o644)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.root.chmod(0o700)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _make(self, *, rotate: bool) -> set[str]:
        now = float(self._clock())
        old = self._load()
        retiring = [e for e in old if e.state == "active"] if rotate else []
        ecdsa_id = self._make_ecdsa()
        fingerprint = self._make_openpgp()
        entries = [
            _Entry(e.key_id, e.kind, "retired", e.created_at) if e in retiring else e
            for e in old
        ]
        entries += [
            _Entry(ecdsa_id, ECDSA_P256, "active", now),
            _Entry(fingerprint, OPENPGP, "active", now),
        ]
        # keys.json names the new keys before the old private halves go: a crash
        # in between leaves an unused private file, never a missing active key.
        self._save(entries)
        for entry in retiring:
            self._retire(entry)
        return {ecdsa_id, fingerprint}

    def _make_ecdsa(self) -> str:
        private = ec.generate_private_key(ec.SECP256R1())
        key_id = ecdsa_key_id(private.public_key())
        folder = self.root / "ecdsa"
        folder.mkdir(mode=0o700, exist_ok=True)
        _write_atomic(
            folder / f"{key_id}.key.pem",
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            mode=0o600,
        )
        _write_atomic(
            folder / f"{key_id}.pub.pem",
            private.public_key().public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            ),
            mode=0o644,
        )
        return key_id

    def _make_openpgp(self) -> str:
        with self._gpg() as gpg:
            spec = gpg.gen_key_input(
                key_type="EDDSA",
                key_curve="ed25519",
                key_usage="sign",
                name_real="cargohold registry",
                name_comment=self._identity,
                no_protection=True,
                expire_date=0,
            )
            made = gpg.gen_key(spec)
            fingerprint = str(made.fingerprint or "")
            if not fingerprint:
                msg = f"gpg could not make a key: {made.stderr[-300:]}"
                raise SigningKeyError(msg)
            armored = gpg.export_keys(fingerprint)
        folder = self.root / "openpgp"
        folder.mkdir(mode=0o700, exist_ok=True)
        _write_atomic(folder / f"{fingerprint}.asc", armored.encode(), mode=0o644)
        return fingerprint

    def _retire(self, entry: _Entry) -> None:
        if entry.kind == ECDSA_P256:
            (self.root / "ecdsa" / f"{entry.key_id}.key.pem").unlink(missing_ok=True)
            self._private.pop(entry.key_id, None)
            return
        with self._gpg() as gpg:
            gpg.delete_keys(entry.key_id, secret=True, expect_passphrase=False)

    @contextlib.contextmanager
    def _gpg_home(self) -> Iterator[str]:
        home = self.root / "gnupg"
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        text = str(home.resolve())
        if len(text) <= _SOCKET_ROOM:
            yield text
            return
        # Too long for gpg-agent's socket: reach it through a short symlink.
        link = _short_link(text)
        with contextlib.suppress(FileExistsError):
            link.symlink_to(text)
        yield str(link)

    @contextlib.contextmanager
    def _gpg(self) -> Iterator[gnupg.GPG]:
        with self._gpg_home() as home:
            try:
                gpg = gnupg.GPG(gnupghome=home)
            except (OSError, ValueError) as exc:
                msg = f"signing needs gpg (GnuPG 2.2 or later) on PATH: {exc}"
                raise SigningKeyError(msg) from None
            yield gpg


def _short_link(home: str) -> Path:
    digest = hashlib.sha256(home.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"cargohold-gpg-{digest}"


def _unlink_short_link(home: Path) -> None:
    """Remove the temporary directory's link to ``home``, if it is ours."""
    text = str(home.resolve())
    if len(text) <= _SOCKET_ROOM:
        return
    link = _short_link(text)
    with contextlib.suppress(OSError):
        if link.is_symlink() and link.readlink() == Path(text):
            link.unlink()


def _write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
