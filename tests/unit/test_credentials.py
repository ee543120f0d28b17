"""``cargohold.credentials``: auth files, the credential-helper protocol, login checks.

Every test works in ``tmp_path`` with ``HOME`` and the client variables pointed there,
so no real user file is read or written.
"""

from __future__ import annotations

import base64
import importlib.metadata
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from cargohold.credentials import authfile, helper, login
from cargohold.credentials.authfile import AuthFileError

CLIENT_VARIABLES = ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "DOCKER_CONFIG")


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in CLIENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return home


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- server names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "host"),
    [
        ("localhost:5000", "localhost:5000"),
        ("http://localhost:5000", "localhost:5000"),
        ("https://Registry.Example:443/v1/", "registry.example:443"),
        ("registry.example/team/app", "registry.example"),
        ("https://user@registry.example/", "registry.example"),
        ("  registry.example  ", "registry.example"),
        ("[::1]:5000", "[::1]:5000"),
        ("https://[::1]:5000/v2/", "[::1]:5000"),
    ],
)
def test_registry_host(server: str, host: str) -> None:
    assert authfile.registry_host(server) == host


@pytest.mark.parametrize(
    ("server", "normal"),
    [
        ("https://registry.example/", "registry.example"),
        ("http://registry.example", "registry.example"),
        ("registry.example", "registry.example"),
        ("HTTPS://Registry.Example:5000//", "registry.example:5000"),
        ("https://index.docker.io/v1/", "index.docker.io/v1"),
        ("registry.example/Team", "registry.example/Team"),
        ("\tlocalhost:5000\n", "localhost:5000"),
    ],
)
def test_normalize_server_url(server: str, normal: str) -> None:
    assert authfile.normalize_server_url(server) == normal


# --- locations ------------------------------------------------------------------------


def test_containers_auth_path_precedence(tmp_path: Path) -> None:
    home = tmp_path / "h"
    explicit = {"REGISTRY_AUTH_FILE": "/x/auth.json", "XDG_RUNTIME_DIR": "/run/u"}
    assert authfile.containers_auth_path(explicit, home) == Path("/x/auth.json")
    runtime = {"XDG_RUNTIME_DIR": "/run/u"}
    assert authfile.containers_auth_path(runtime, home) == Path(
        "/run/u/containers/auth.json"
    )
    assert authfile.containers_auth_path({}, home) == (
        home / ".config/containers/auth.json"
    )


def test_docker_config_path(tmp_path: Path) -> None:
    home = tmp_path / "h"
    assert authfile.docker_config_path({"DOCKER_CONFIG": "/d"}, home) == Path(
        "/d/config.json"
    )
    assert authfile.docker_config_path({}, home) == home / ".docker/config.json"


# --- reading --------------------------------------------------------------------------


def test_read_config_missing_or_empty_is_empty(tmp_path: Path) -> None:
    assert authfile.read_config(tmp_path / "absent.json") == {}
    blank = tmp_path / "blank.json"
    blank.write_text("  \n")
    assert authfile.read_config(blank) == {}


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"auths": []}', '"string"'])
def test_read_config_refuses_bad_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "auth.json"
    path.write_text(text)
    with pytest.raises(AuthFileError, match=str(path)):
        authfile.read_config(path)


def test_read_config_refuses_undecodable_bytes(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(AuthFileError, match="cannot read"):
        authfile.read_config(path)


# --- merging --------------------------------------------------------------------------

PODMAN_FILE: dict[str, Any] = {
    "auths": {
        "quay.io": {"auth": b64("q:pw")},
        "localhost:5000/team": {"auth": b64("scoped:pw")},
        "https://localhost:5000/v1/": {"auth": b64("legacy:old")},
    },
    "credHelpers": {"gcr.io": "gcloud"},
    "psFormat": "table {{.ID}}",
}


def test_with_auth_keeps_everything_else() -> None:
    before = json.loads(json.dumps(PODMAN_FILE))
    updated = authfile.with_auth(PODMAN_FILE, "localhost:5000", "alice", "s3:cret")
    assert before == PODMAN_FILE  # the input is not modified
    assert updated["psFormat"] == "table {{.ID}}"
    assert updated["credHelpers"] == {"gcr.io": "gcloud"}
    assert updated["auths"] == {
        "quay.io": {"auth": b64("q:pw")},
        "localhost:5000/team": {"auth": b64("scoped:pw")},  # a scoped entry stays
        "localhost:5000": {"auth": b64("alice:s3:cret")},  # the legacy alias is gone
    }


def test_with_auth_on_empty_document() -> None:
    assert authfile.with_auth({}, "r.example", "u", "p") == {
        "auths": {"r.example": {"auth": b64("u:p")}}
    }


def test_with_auth_without_password_writes_an_empty_entry() -> None:
    updated = authfile.with_auth(PODMAN_FILE, "localhost:5000", "alice", None)
    assert updated["auths"]["localhost:5000"] == {}


def test_without_auth() -> None:
    updated, removed = authfile.without_auth(PODMAN_FILE, "localhost:5000")
    assert removed
    assert set(updated["auths"]) == {"quay.io", "localhost:5000/team"}
    same, removed = authfile.without_auth(updated, "localhost:5000")
    assert not removed
    assert same == updated
    assert authfile.without_auth({}, "x") == ({}, False)


def test_get_auth() -> None:
    assert authfile.get_auth(PODMAN_FILE, "quay.io") == ("q", "pw")
    assert authfile.get_auth(PODMAN_FILE, "localhost:5000") == ("legacy", "old")
    assert authfile.get_auth(PODMAN_FILE, "docker.io") is None
    legacy = {"auths": {"r.example": {"username": "u", "password": "p"}}}
    assert authfile.get_auth(legacy, "r.example") == ("u", "p")
    helper_only: dict[str, Any] = {"auths": {"r.example": {}}}
    assert authfile.get_auth(helper_only, "r.example") is None


def test_auth_field_round_trip_and_errors() -> None:
    assert authfile.decode_auth(authfile.encode_auth("ü", "p:w")) == ("ü", "p:w")
    with pytest.raises(AuthFileError, match="invalid auth field"):
        authfile.decode_auth("not base64!")
    with pytest.raises(AuthFileError, match="no ':'"):
        authfile.decode_auth(b64("nocolon"))


@pytest.mark.parametrize(
    ("document", "host", "name"),
    [
        ({"credsStore": "desktop"}, "r.example", "desktop"),
        ({"credsStore": "desktop", "credHelpers": {"r.example": "ecr"}}, "r.example",
         "ecr"),
        ({"credsStore": "desktop", "credHelpers": {"o.example": "ecr"}}, "r.example",
         "desktop"),
        ({"credHelpers": {"https://r.example": "ecr"}}, "r.example", "ecr"),
        ({"credsStore": ""}, "r.example", None),
        ({}, "r.example", None),
    ],
)  # fmt: skip
def test_credential_helper(
    document: dict[str, Any], host: str, name: str | None
) -> None:
    assert authfile.credential_helper(document, host) == name


# --- writing --------------------------------------------------------------------------


def test_write_config_modes_and_content(tmp_path: Path) -> None:
    path = tmp_path / "new" / "nested" / "auth.json"
    written = authfile.write_config(path, {"auths": {"h": {"auth": "x"}}})
    assert written == path
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert mode(path.parent.parent) == 0o700
    assert json.loads(path.read_text()) == {"auths": {"h": {"auth": "x"}}}
    assert [p.name for p in path.parent.iterdir()] == ["auth.json"]


def test_write_config_leaves_existing_directories_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    authfile.write_config(shared / "config.json", {})
    assert mode(shared) == 0o755


def test_write_config_tightens_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{}")
    path.chmod(0o644)
    authfile.write_config(path, {"a": 1})
    assert mode(path) == 0o600


def test_write_config_writes_through_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "config.json"
    real.parent.mkdir()
    real.write_text("{}")
    link = tmp_path / "config.json"
    link.symlink_to(real)
    assert authfile.write_config(link, {"a": 1}) == real
    assert link.is_symlink()
    assert json.loads(real.read_text()) == {"a": 1}


def test_write_config_failure_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "containers" / "auth.json"
    path.parent.mkdir()
    path.write_text('{"old": true}')

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        authfile.write_config(path, {"new": True})
    assert json.loads(path.read_text()) == {"old": True}
    assert [p.name for p in path.parent.iterdir()] == [
        "auth.json"
    ]  # no temporary file left behind


def test_read_merge_write_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    authfile.write_config(path, PODMAN_FILE)
    updated = authfile.with_auth(authfile.read_config(path), "r.example", "u", "p")
    authfile.write_config(path, updated)
    again = authfile.read_config(path)
    assert authfile.get_auth(again, "r.example") == ("u", "p")
    assert authfile.get_auth(again, "quay.io") == ("q", "pw")
    assert again["psFormat"] == PODMAN_FILE["psFormat"]


# --- the credential helper, as docker runs it -----------------------------------------

USAGE = f"Usage: {helper.NAME} <store|get|erase|list|version>"
HELPER = "import sys; from cargohold.credentials.helper import main; sys.exit(main())"


def run_helper(
    *args: str, stdin: str = "", env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", HELPER, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture
def helper_env(tmp_path: Path, private_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARGOHOLD_")}
    env["HOME"] = str(private_home)
    env[helper.STORE_ENV] = str(tmp_path / "store" / "credentials.json")
    return env


SECRET = "s3cret"  # noqa: S105 - a test credential


def store_payload(server: str, username: str = "alice", secret: str = SECRET) -> str:
    return json.dumps({"ServerURL": server, "Username": username, "Secret": secret})


def test_helper_store_get_list_erase(
    tmp_path: Path, helper_env: dict[str, str]
) -> None:
    stored = run_helper("store", stdin=store_payload("localhost:5000"), env=helper_env)
    assert (stored.returncode, stored.stdout) == (0, "")

    got = run_helper("get", stdin="localhost:5000\n", env=helper_env)
    assert got.returncode == 0
    assert json.loads(got.stdout) == {
        "ServerURL": "localhost:5000",
        "Username": "alice",
        "Secret": SECRET,
    }
    assert list(json.loads(got.stdout)) == ["ServerURL", "Username", "Secret"]

    listed = run_helper("list", env=helper_env)
    assert json.loads(listed.stdout) == {"localhost:5000": "alice"}

    erased = run_helper("erase", stdin="localhost:5000", env=helper_env)
    assert (erased.returncode, erased.stdout) == (0, "")
    missing = run_helper("get", stdin="localhost:5000", env=helper_env)
    assert (missing.returncode, missing.stdout) == (1, f"{helper.NOT_FOUND}\n")
    assert json.loads(run_helper("list", env=helper_env).stdout) == {}


def test_helper_file_is_private(tmp_path: Path, helper_env: dict[str, str]) -> None:
    run_helper("store", stdin=store_payload("r.example"), env=helper_env)
    path = Path(helper_env[helper.STORE_ENV])
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700


def test_helper_default_store_is_under_home(
    private_home: Path, helper_env: dict[str, str]
) -> None:
    del helper_env[helper.STORE_ENV]
    assert run_helper("store", stdin=store_payload("r"), env=helper_env).returncode == 0
    path = private_home / ".config" / "cargohold" / "credentials.json"
    assert json.loads(path.read_text())["credentials"]["r"]["Username"] == "alice"


def test_helper_matches_normalised_urls(helper_env: dict[str, str]) -> None:
    run_helper("store", stdin=store_payload("https://R.example/"), env=helper_env)
    for spelling in ("r.example", "http://r.example", "https://r.example//"):
        got = run_helper("get", stdin=spelling, env=helper_env)
        assert got.returncode == 0, spelling
        assert json.loads(got.stdout)["ServerURL"] == spelling  # echoed, as in Go
    other = run_helper("get", stdin="r.example/ns", env=helper_env)
    assert other.returncode == 1
    run_helper("store", stdin=store_payload("r.example", "bob", "new"), env=helper_env)
    listed = json.loads(run_helper("list", env=helper_env).stdout)
    assert listed == {"r.example": "bob"}  # replaced, not duplicated


def test_helper_keeps_other_servers(helper_env: dict[str, str]) -> None:
    run_helper("store", stdin=store_payload("a.example", "a"), env=helper_env)
    run_helper("store", stdin=store_payload("b.example", "b"), env=helper_env)
    run_helper("erase", stdin="a.example", env=helper_env)
    assert json.loads(run_helper("list", env=helper_env).stdout) == {"b.example": "b"}


@pytest.mark.parametrize(
    ("args", "stdin", "code", "stdout"),
    [
        (["store"], '{"Username": "u", "Secret": "s"}', 1, helper.MISSING_SERVER_URL),
        (["store"], '{"ServerURL": "r", "Secret": "s"}', 1, helper.MISSING_USERNAME),
        (["get"], "\n", 1, helper.MISSING_SERVER_URL),
        (["erase"], "", 1, helper.MISSING_SERVER_URL),
        (["erase"], "never.stored", 1, helper.NOT_FOUND),
        (["get"], "never.stored", 1, helper.NOT_FOUND),
        (["frobnicate"], "", 1, f"{helper.NAME}: unknown action: frobnicate"),
        ([], "", 1, USAGE),
        (["get", "extra"], "", 1, USAGE),
        (["version"], "", 0, f"{helper.NAME} (cargohold) "),
        (["--version"], "", 0, f"{helper.NAME} (cargohold) "),
    ],
)  # fmt: skip
def test_helper_protocol_errors(
    helper_env: dict[str, str], args: list[str], stdin: str, code: int, stdout: str
) -> None:
    result = run_helper(*args, stdin=stdin, env=helper_env)
    assert result.returncode == code
    assert result.stdout.startswith(stdout)
    assert result.stderr == ""


def test_helper_is_a_console_script() -> None:
    scripts = importlib.metadata.entry_points(group="console_scripts")
    (entry,) = [s for s in scripts if s.name == "docker-credential-cargohold"]
    assert entry.value == "cargohold.credentials.helper:main"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ('{"serverurl": "r", "USERNAME": "u", "secret": "s"}', ("r", "u", "s")),
        ('{"ServerURL": "r", "Username": "u"}', ("r", "u", "")),
        ('{"ServerURL": "r", "Username": "u", "Secret": null, "x": 1}', ("r", "u", "")),
    ],
)
def test_store_payload_parsing(payload: str, expected: tuple[str, str, str]) -> None:
    creds = helper.Credentials.parse(payload)
    assert (creds.server_url, creds.username, creds.secret) == expected


@pytest.mark.parametrize(
    "payload", ["", "[]", '{"ServerURL": 1, "Username": "u"}', "{"]
)
def test_store_payload_rejected(payload: str) -> None:
    with pytest.raises(helper.HelperError, match="invalid credentials JSON"):
        helper.Credentials.parse(payload)


def test_helper_reports_a_corrupt_store(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text("{oops")
    store = helper.FileCredentialStore(path)
    with pytest.raises(helper.HelperError, match="not valid JSON"):
        helper.handle("list", "", store)
    path.write_text('{"credentials": []}')
    with pytest.raises(helper.HelperError, match="must be a JSON object"):
        helper.handle("get", "r", store)


def test_run_helper_client(
    tmp_path: Path, helper_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run_helper`` drives our own helper, found on PATH as docker finds helpers."""
    bin_dir = install_helper_on_path(tmp_path, monkeypatch)
    monkeypatch.setenv(helper.STORE_ENV, helper_env[helper.STORE_ENV])
    helper.run_helper("cargohold", "store", store_payload("r.example"))
    got = json.loads(helper.run_helper("cargohold", "get", "r.example"))
    assert got["Secret"] == SECRET
    with pytest.raises(helper.CredentialsNotFoundError):
        helper.run_helper("cargohold", "get", "other.example")
    with pytest.raises(helper.HelperError, match="unknown action"):
        helper.run_helper("cargohold", "frobnicate", "")
    with pytest.raises(helper.HelperError, match="not installed"):
        helper.run_helper("absent-helper", "get", "r.example")
    assert (bin_dir / "docker-credential-cargohold").exists()


def install_helper_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Our helper as an executable on a private PATH (no install needed)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "docker-credential-cargohold"
    script.write_text(f"#!{sys.executable}\n{HELPER.replace('; ', chr(10))}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


# --- login: storing next to a credential helper ---------------------------------------


def test_store_uses_the_configured_helper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_helper_on_path(tmp_path, monkeypatch)
    monkeypatch.setenv(helper.STORE_ENV, str(tmp_path / "helper.json"))
    config = tmp_path / "docker" / "config.json"
    authfile.write_config(
        config,
        {
            "credsStore": "cargohold",
            "auths": {"http://r.example": {"auth": b64("o:p")}},
        },
    )
    password = "distinctive-password-7f3a"  # noqa: S105 - a test value
    message = login._store(config, "r.example", "alice", password)
    assert "docker-credential-cargohold" in message
    document = authfile.read_config(config)
    assert document["auths"] == {"r.example": {}}  # no plaintext, no stale alias
    text = config.read_text()
    assert password not in text
    assert b64(f"alice:{password}") not in text
    store = helper.FileCredentialStore(tmp_path / "helper.json")
    assert store.get("r.example") == ("alice", password)

    assert login._erase(config, "r.example") is not None
    assert authfile.read_config(config)["auths"] == {}
    assert store.list() == {}
    assert login._erase(config, "r.example") is None


# --- login: the token-auth check ------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "scheme", "params"),
    [
        ('Bearer realm="https://a/token",service="reg"', "bearer",
         {"realm": "https://a/token", "service": "reg"}),
        ('bearer realm="https://a/token", service="r, g",scope="repository:x:pull"',
         "bearer", {"realm": "https://a/token", "service": "r, g",
                    "scope": "repository:x:pull"}),
        ('Basic realm="cargohold"', "basic", {"realm": "cargohold"}),
        ('Bearer realm="a\\"b", Basic realm="x"', "bearer", {"realm": 'a"b'}),
        ("Bearer realm=token-url", "bearer", {"realm": "token-url"}),
        ("", "", {}),
    ],
)  # fmt: skip
def test_challenge_parse(header: str, scheme: str, params: dict[str, str]) -> None:
    assert login.Challenge.parse(header) == login.Challenge(scheme, params)


@pytest.mark.parametrize(
    ("host", "insecure", "urls"),
    [
        ("r.example", False, ["https://r.example"]),
        ("r.example", True, ["https://r.example", "http://r.example"]),
        ("localhost:5000", False, ["https://localhost:5000", "http://localhost:5000"]),
        ("127.0.0.1:5000", False, ["https://127.0.0.1:5000", "http://127.0.0.1:5000"]),
        ("[::1]:5000", False, ["https://[::1]:5000", "http://[::1]:5000"]),
        ("localhost.evil.example", False, ["https://localhost.evil.example"]),
    ],
)
def test_candidate_urls(host: str, insecure: bool, urls: list[str]) -> None:
    assert login.candidate_urls(host, insecure=insecure) == urls


CHALLENGE = {"WWW-Authenticate": 'Bearer realm="/token",service="cargohold"'}


def token_registry(
    *, https: bool = True, token_status: int = 200, token_body: Any = None
) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport answering like a token-auth registry (unit tier: no sockets)."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.scheme == "https" and not https:
            raise httpx.ConnectError("wrong version number", request=request)
        if request.url.path == "/v2/":
            return httpx.Response(401, headers=CHALLENGE, json={"errors": []})
        if request.url.path == "/token":
            body = {"token": "t"} if token_body is None else token_body
            return httpx.Response(token_status, json=body)
        return httpx.Response(404)

    return httpx.MockTransport(handle), seen


def verify(
    transport: httpx.MockTransport, host: str, *, insecure: bool = False
) -> login.Verified:
    with httpx.Client(transport=transport) as client:
        return login.verify_credentials(client, host, "alice", "pw", insecure=insecure)


def test_verify_asks_the_realm_with_basic_credentials() -> None:
    transport, seen = token_registry()
    verified = verify(transport, "r.example")
    assert verified == login.Verified("https://r.example", auth_enabled=True)
    token_request = seen[-1]
    assert token_request.url.path == "/token"
    assert dict(token_request.url.params) == {
        "account": "alice",
        "service": "cargohold",
    }
    assert token_request.headers["Authorization"] == f"Basic {b64('alice:pw')}"
    assert "Authorization" not in seen[0].headers


def test_verify_accepts_access_token() -> None:
    transport, _ = token_registry(token_body={"access_token": "t"})
    assert verify(transport, "r.example").auth_enabled


def test_verify_falls_back_to_http_for_localhost_only() -> None:
    transport, seen = token_registry(https=False)
    verified = verify(transport, "localhost:5000")
    assert verified.base_url == "http://localhost:5000"
    assert [r.url.scheme for r in seen] == ["https", "http", "http"]
    with pytest.raises(login.LoginError, match=r"cannot reach r\.example.*--insecure"):
        verify(transport, "r.example")
    assert verify(transport, "r.example", insecure=True).base_url == "http://r.example"


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (401, {"errors": [{"code": "UNAUTHORIZED"}]}, "incorrect username or password"),
        (200, {"nothing": "here"}, "without a token"),
        (200, ["token"], "without a token"),
        (429, {"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down"}]},
         r"429 \(slow down\)"),
        (500, "oops", "answered 500"),
    ],
)  # fmt: skip
def test_verify_refusals(status: int, body: Any, message: str) -> None:
    transport, _ = token_registry(token_status=status, token_body=body)
    with pytest.raises(login.LoginError, match=message):
        verify(transport, "r.example")


def single_answer(response: httpx.Response) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: response)


def test_verify_registry_without_auth() -> None:
    verified = verify(single_answer(httpx.Response(200, json={})), "r.example")
    assert verified == login.Verified("https://r.example", auth_enabled=False)


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(404, text="no"), "answered 404; is this a container registry"),
        (httpx.Response(401), "no Bearer or Basic challenge"),
        (httpx.Response(401, headers={"WWW-Authenticate": "Bearer service=x"}),
         "without a realm"),
        (httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="ftp://a/t"'}),
         "not an HTTP URL"),
        (httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="http://a/t"'}),
         "plain HTTP"),
    ],
)  # fmt: skip
def test_verify_odd_registries(response: httpx.Response, message: str) -> None:
    with pytest.raises(login.LoginError, match=message):
        verify(single_answer(response), "r.example")


def test_verify_basic_challenge() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") == f"Basic {b64('alice:pw')}":
            return httpx.Response(200)
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})

    assert verify(httpx.MockTransport(handle), "r.example").auth_enabled
