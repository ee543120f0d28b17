"""``FileKeyStore``: keys made once across processes, file modes, rotation; what it
signs checked with openssl and gpg (not our code)."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from cargohold.registry.signing.file_keys import FileKeyStore, SigningKeyError
from cargohold.registry.signing.keys import ECDSA_P256, OPENPGP, KeyStore
from cargohold.registry.signing.simple import open_signed
from tests.prerequisites import require

IDENTITY = "registry.example.com"


@pytest.fixture(autouse=True)
def _tools() -> None:
    require("gpg", "gpgconf", "openssl")


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[FileKeyStore]:
    store = FileKeyStore(tmp_path / "signing", identity=IDENTITY)
    yield store
    store.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ensure_makes_one_key_of_each_kind_with_private_files_private(
    keys: FileKeyStore,
) -> None:
    conformance: KeyStore = keys  # the typed assignment is the Protocol check
    assert conformance.public_keys() == []
    with pytest.raises(LookupError):
        keys.ecdsa()
    assert keys.ensure()
    assert not keys.ensure()
    published = keys.public_keys()
    assert sorted((k.kind, k.state) for k in published) == [
        (ECDSA_P256, "active"),
        (OPENPGP, "active"),
    ]
    ecdsa = keys.ecdsa()
    assert _mode(keys.root) == 0o700
    assert _mode(keys.root / "ecdsa" / f"{ecdsa.key_id}.key.pem") == 0o600
    assert _mode(keys.root / "gnupg") == 0o700
    assert keys.openpgp_fingerprint() in {k.key_id for k in published}


def test_the_ecdsa_key_signs_what_openssl_verifies(
    keys: FileKeyStore, tmp_path: Path
) -> None:
    keys.ensure()
    active = keys.ecdsa()
    pem = next(k.public for k in keys.public_keys() if k.kind == ECDSA_P256)
    (tmp_path / "key.pub").write_text(pem)
    (tmp_path / "data").write_bytes(b"payload")
    signature = active.private.sign(b"payload", ec.ECDSA(hashes.SHA256()))
    (tmp_path / "data.sig").write_bytes(signature)
    checked = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "key.pub"),
         "-signature", str(tmp_path / "data.sig"), str(tmp_path / "data")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "Verified OK" in checked.stdout
    # The private file is a P-256 key openssl reads, and the id is its public half's.
    private = keys.root / "ecdsa" / f"{active.key_id}.key.pem"
    text = subprocess.run(
        ["openssl", "pkey", "-in", str(private), "-noout", "-text"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "prime256v1" in text or "P-256" in text


def test_the_openpgp_key_signs_what_gpg_verifies(
    keys: FileKeyStore, tmp_path: Path
) -> None:
    keys.ensure()
    signed = keys.openpgp_sign(b'{"critical": {}}')
    armored = next(k.public for k in keys.public_keys() if k.kind == OPENPGP)
    assert f"({IDENTITY})" in _gpg_uid(armored, tmp_path)
    home = tmp_path / "verify"
    home.mkdir(mode=0o700)
    env = os.environ | {"GNUPGHOME": str(home)}
    (tmp_path / "key.asc").write_text(armored)
    (tmp_path / "signed.gpg").write_bytes(signed)
    subprocess.run(
        ["gpg", "--batch", "--import", str(tmp_path / "key.asc")],
        env=env, capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    opened = subprocess.run(
        ["gpg", "--batch", "--decrypt", str(tmp_path / "signed.gpg")],
        env=env, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    assert b"Good signature" in opened.stderr
    assert opened.stdout == b'{"critical": {}}'
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "all"],
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip


def _gpg_uid(armored: str, tmp_path: Path) -> str:
    shown = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--show-keys"],
        input=armored.encode(), capture_output=True, timeout=60, check=True,
        env=os.environ | {"GNUPGHOME": str(tmp_path)},
    ).stdout.decode()  # fmt: skip
    return next(line.split(":")[9] for line in shown.splitlines() if line[:4] == "uid:")


def test_generate_refuses_to_replace_keys_without_rotate(keys: FileKeyStore) -> None:
    keys.ensure()
    with pytest.raises(SigningKeyError, match="--rotate"):
        keys.generate(rotate=False)


def test_rotation_retires_old_keys_and_keeps_their_public_halves(
    keys: FileKeyStore, tmp_path: Path
) -> None:
    keys.ensure()
    old_ecdsa, old_fingerprint = keys.ecdsa().key_id, keys.openpgp_fingerprint()
    old_signed = keys.openpgp_sign(b"signed before the rotation")
    # Another process's view of the same directory.
    other = FileKeyStore(keys.root, identity=IDENTITY)
    assert other.ecdsa().key_id == old_ecdsa

    made = keys.generate(rotate=True)
    assert {k.kind for k in made} == {ECDSA_P256, OPENPGP}
    assert all(k.state == "active" for k in made)
    states = {k.key_id: k.state for k in keys.public_keys()}
    assert states[old_ecdsa] == states[old_fingerprint] == "retired"
    assert list(states.values()).count("active") == 2
    assert keys.ecdsa().key_id != old_ecdsa
    assert keys.openpgp_fingerprint() != old_fingerprint
    assert other.ecdsa().key_id == keys.ecdsa().key_id  # seen without a restart
    # The old private halves are gone; the public ones remain.
    assert not (keys.root / "ecdsa" / f"{old_ecdsa}.key.pem").exists()
    assert (keys.root / "ecdsa" / f"{old_ecdsa}.pub.pem").exists()
    secret = subprocess.run(
        ["gpg", "--batch", "--homedir", str(keys.root / "gnupg"), "--with-colons",
         "--list-secret-keys"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert old_fingerprint not in secret
    assert keys.openpgp_fingerprint() in secret
    # A retired key's signatures still verify against the published keys.
    armored = [k.public for k in keys.public_keys() if k.kind == OPENPGP]
    opened = open_signed(old_signed, armored)
    assert opened.fingerprint == old_fingerprint
    assert opened.data == b"signed before the rotation"
    # And with only the new key they do not.
    assert open_signed(old_signed, armored[-1:]).fingerprint is None


def _ensure_in_child(root: str, results: multiprocessing.Queue[bool]) -> None:
    store = FileKeyStore(Path(root), identity=IDENTITY)
    results.put(store.ensure())


def test_processes_starting_at_once_make_the_keys_once(tmp_path: Path) -> None:
    root = tmp_path / "signing"
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[bool] = context.Queue()
    children = [
        context.Process(target=_ensure_in_child, args=(str(root), results))
        for _ in range(3)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
        assert child.exitcode == 0
    made = sorted(results.get(timeout=10) for _ in children)
    assert made == [False, False, True]
    listed = json.loads((root / "keys.json").read_text())["keys"]
    assert len(listed) == 2
    assert len(list((root / "ecdsa").glob("*.key.pem"))) == 1
    FileKeyStore(root, identity=IDENTITY).close()


def test_a_deep_key_directory_still_reaches_gpg_agent(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*(["nested-directory-name"] * 5), "signing")
    store = FileKeyStore(deep, identity=IDENTITY)
    try:
        store.ensure()
        assert store.openpgp_sign(b"x")
    finally:
        store.close()
        shutil.rmtree(deep, ignore_errors=True)
