"""The admin commands (users, orgs, ...) on both backends: the data directory, and a
running registry over HTTP (a real ``cargohold serve`` in a subprocess)."""

from __future__ import annotations

import getpass
import json
import re
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import structlog
from click.testing import CliRunner, Result

from cargohold.cli import main
from tests.integration.serverproc import ServerProcess, check_log

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ROOT_PASSWORD = "root-password-123"  # noqa: S105 - test accounts
NEW_PASSWORD = "alice-password-1"  # noqa: S105


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """The local backend points structlog at the runner's stderr; undo that after."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ServerProcess]:
    work = tmp_path_factory.mktemp("server")
    process = ServerProcess(work / "data", work / "server.log", settings={
        "CARGOHOLD_AUTH_MODE": "token",
        "CARGOHOLD_ADMIN_USER": "root",
        "CARGOHOLD_ADMIN_PASSWORD": ROOT_PASSWORD,
    })  # fmt: skip
    process.start()
    try:
        yield process
    finally:
        process.stop()
    check_log(process, request)


def run(*args: str, input: str | None = None, **env: str) -> Result:  # noqa: A002
    return CliRunner().invoke(main, list(args), input=input, env=env)


def local(data_dir: Path) -> tuple[str, ...]:
    return ("--data-dir", str(data_dir))


def remote(server: ServerProcess) -> tuple[str, ...]:
    return ("--registry", server.url, "--username", "root")


def as_root(*args: str, server: ServerProcess, input: str | None = None) -> Result:  # noqa: A002
    return run(*args, *remote(server), input=input, CARGOHOLD_PASSWORD=ROOT_PASSWORD)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


# -- the local backend -----------------------------------------------------------------


def test_local_backend_manages_everything(data_dir: Path) -> None:
    at = local(data_dir)
    assert ok(run("orgs", "add", "acme", *at)) == "created organization acme\n"
    assert ok(
        run("users", "add", "alice", *at, CARGOHOLD_NEW_PASSWORD=NEW_PASSWORD)
    ) == ("created user alice\n")
    users = ok(run("users", "list", *at))
    assert re.search(r"^alice\s+no\s+no\s+-\s+\d{4}-", users, re.MULTILINE), users
    assert ok(run("members", "set", "acme", "alice", "owner", *at)) == (
        "alice is owner in acme\n"
    )
    added = ok(run("grants", "add", "acme", "user:bob", "acme/app-*", "pusher",
                   "--tag", "v*", "--tag", "stable", *at))  # fmt: skip
    assert "acme/app-*" in added
    assert "v*,stable" in added

    created = run("tokens", "create", "acme", "-d", "deploy", *at)
    secret = re.search(r"^secret: (chp_\S+)$", ok(created), re.MULTILINE)
    assert secret is not None
    assert "shown only this once" in created.stderr
    tokens = ok(run("tokens", "list", "acme", *at))
    assert "deploy" in tokens
    token_id = json.loads(ok(run("tokens", "list", "acme", "--json", *at)))[0]["id"]
    # The random part is token_urlsafe and may hold "_": cut by the known prefix.
    random_part = secret.group(1).removeprefix(f"chp_{token_id}_")
    assert len(random_part) >= 40
    assert random_part not in tokens
    assert ok(run("tokens", "revoke", "acme", token_id, *at)) == (
        f"revoked pull token {token_id}\n"
    )

    grants = json.loads(ok(run("grants", "list", "acme", "--json", *at)))
    assert [(g["principal"], g["role"]) for g in grants] == [
        ("user:alice", "owner"),
        ("user:bob", "pusher"),
        (f"token:{token_id}", "puller"),
    ]
    bob = next(g for g in grants if g["principal"] == "user:bob")
    ok(run("grants", "remove", "acme", str(bob["id"]), *at))

    ok(run("oidc", "add", "deploy", "--issuer", "https://ci.example", "--audience",
           "cargohold", "--subject", "repo:acme/*", "--claim", "ref=refs/heads/*",
           *at))  # fmt: skip
    identities = ok(run("oidc", "list", *at))
    assert "ref=refs/heads/*" in identities

    shown = ok(run("repos", "set", "acme/app", "--visibility", "public",
                   "--starter-tags", "stable, v*", *at))  # fmt: skip
    assert re.search(r"^acme/app\s+public\s+stable,v\*\s", shown, re.MULTILINE), shown
    settings = json.loads(ok(run("repos", "show", "acme/app", "--json", *at)))
    assert settings["starter_tags"] == ["stable", "v*"]
    ok(run("repos", "set", "acme/app", "--starter-tags", "", *at))
    settings = json.loads(ok(run("repos", "show", "acme/app", "--json", *at)))
    assert (settings["visibility"], settings["starter_tags"]) == ("public", [])

    ok(
        run(
            "users", "passwd", "alice", *at, input=f"{NEW_PASSWORD}2\n{NEW_PASSWORD}2\n"
        )
    )
    ok(run("members", "remove", "acme", "alice", *at))
    ok(run("oidc", "remove", "deploy", *at))
    ok(run("users", "remove", "alice", *at))
    ok(run("orgs", "remove", "acme", *at))
    assert ok(run("orgs", "list", *at)) == "(none)\n"

    events = json.loads(ok(run("audit", "list", "--json", *at)))
    assert {e["actor"] for e in events} == {"user:<system>"}
    assert {e["client"] for e in events} == {f"local:{getpass.getuser()}"}
    assert [e["action"] for e in events][-3:] == [
        "oidc.delete", "user.delete", "organization.delete",
    ]  # fmt: skip
    table = ok(run("audit", "list", "--actor", "user:<system>", "--limit", "2", *at))
    assert len(table.splitlines()) == 3  # the header and two events


def test_local_errors_are_reported(data_dir: Path) -> None:
    at = local(data_dir)
    ok(run("orgs", "add", "acme", *at))
    again = run("orgs", "add", "acme", *at)
    assert again.exit_code == 1
    assert again.stderr == "error: organization 'acme' exists (409)\n"
    as_json = run("orgs", "add", "acme", "--json", *at)
    assert as_json.exit_code == 1
    assert json.loads(as_json.stderr) == {
        "error": {
            "status": 409,
            "code": "CONFLICT",
            "message": "organization 'acme' exists",
        }
    }
    short = run("users", "add", "bob", *at, CARGOHOLD_NEW_PASSWORD="short")  # noqa: S106
    assert short.exit_code == 1
    assert "at least 12" in short.stderr
    missing = run("members", "set", "acme", "nobody", "owner", *at)
    assert missing.exit_code == 1
    assert "no user 'nobody'" in missing.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("orgs", "list", "--data-dir", "/nonexistent/cargohold"), "no data directory"),
    (("oidc", "add", "x", "--issuer", "https://i", "--audience", "a", "--subject", "s",
      "--claim", "novalue"), "is not CLAIM=GLOB"),
    (("repos", "set", "acme/app"), "give --visibility and/or --starter-tags"),
    (("orgs", "list", "--registry", "http://127.0.0.1:9"), "needs --username"),
    (("orgs", "list", "--registry", "http://127.0.0.1:9", "-u", "x"),
     "needs a password"),
    (("orgs", "list", "--registry", "http://127.0.0.1:9", "--data-dir", "/tmp"),
     "--data-dir is for local use"),
    (("members", "set", "acme", "bob", "god"), "'god' is not one of"),
])  # fmt: skip
def test_usage_errors(data_dir: Path, args: tuple[str, ...], message: str) -> None:
    alone = "--data-dir" in args or "--registry" in args
    result = run(*args) if alone else run(*args, *local(data_dir))
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_local_backend_works_with_auth_off(data_dir: Path) -> None:
    """With auth mode none the HTTP API refuses everything; the data dir does not."""
    result = run("orgs", "add", "acme", *local(data_dir), CARGOHOLD_AUTH_MODE="none")
    assert ok(result) == "created organization acme\n"


# -- the remote backend ----------------------------------------------------------------


def test_remote_pull_token_works_until_revoked(server: ServerProcess) -> None:
    ok(as_root("orgs", "add", "remote", server=server))
    created = json.loads(ok(as_root("tokens", "create", "remote", "-d", "ci", "--json",
                                    server=server)))  # fmt: skip
    scope = {"service": "cargohold", "scope": "repository:remote/app:pull"}
    login = httpx.get(
        f"{server.url}/token", params=scope, auth=("ci", created["secret"])
    )
    assert login.status_code == 200, login.text
    ok(as_root("tokens", "revoke", "remote", created["id"], server=server))
    login = httpx.get(
        f"{server.url}/token", params=scope, auth=("ci", created["secret"])
    )
    assert login.status_code == 401


def test_remote_password_from_stdin_before_prompts(server: ServerProcess) -> None:
    """--password-stdin takes the first line; the new password prompt the rest."""
    lines = f"{ROOT_PASSWORD}\n{NEW_PASSWORD}\n{NEW_PASSWORD}\n"
    result = run("users", "add", "carol", *remote(server), "--password-stdin",
                 input=lines)  # fmt: skip
    assert ok(result) == "created user carol\n"
    assert httpx.get(f"{server.url}/token", auth=("carol", NEW_PASSWORD)).is_success
    # carol is no administrator: the registry refuses, and the CLI says why.
    denied = run("users", "list", "--registry", server.url, "-u", "carol",
                 CARGOHOLD_PASSWORD=NEW_PASSWORD)  # fmt: skip
    assert denied.exit_code == 1
    assert denied.stderr == "error: only an administrator may do this (403)\n"


def test_remote_wrong_password_and_unreachable(server: ServerProcess) -> None:
    wrong = run("orgs", "list", *remote(server), CARGOHOLD_PASSWORD="wrong-password-1")  # noqa: S106
    assert wrong.exit_code == 1
    assert wrong.stderr == "error: invalid username or password (401)\n"
    gone = run("orgs", "list", "--registry", "http://127.0.0.1:9", "-u", "x",
               CARGOHOLD_PASSWORD="x")  # noqa: S106  # fmt: skip
    assert gone.exit_code == 1
    assert "cannot reach the registry" in gone.stderr


# -- both backends alike ---------------------------------------------------------------

SCRIPT: list[tuple[str, ...]] = [
    ("orgs", "add", "same"),
    ("users", "add", "dave"),
    ("members", "set", "same", "dave", "owner"),
    ("grants", "add", "same", "user:erin", "same/app-*", "pusher", "--tag", "v*"),
    ("grants", "add", "same", "erin", "same/*", "puller"),
    ("grants", "list", "same"),
    ("tokens", "create", "same", "-d", "ci", "--role", "pusher", "--expires-in-days",
     "7"),
    ("tokens", "create", "same", "-d", "ci", "--repository", "*"),
    ("tokens", "list", "same"),
    ("repos", "set", "same/app", "--visibility", "public", "--starter-tags", "stable"),
    ("repos", "show", "same/app"),
    ("repos", "show", "Same/App"),
    ("oidc", "add", "same-ci", "--issuer", "https://ci.example", "--audience", "a",
     "--subject", "s", "--claim", "ref=main"),
    ("oidc", "add", "same-ci", "--issuer", "https://ci.example", "--audience", "a",
     "--subject", "s"),
    ("orgs", "add", "same"),
    ("members", "set", "same", "nobody", "owner"),
    ("members", "remove", "same", "dave"),
    ("members", "remove", "same", "dave"),
    ("oidc", "remove", "same-ci"),
    ("users", "remove", "dave"),
    ("orgs", "remove", "same"),
    ("orgs", "remove", "same"),
]  # fmt: skip
VOLATILE = {"created_at", "updated_at", "expires_at", "revoked_at", "created_by",
            "secret", "at"}  # fmt: skip


def normalize(value: Any) -> Any:
    """Times, token ids and secrets differ from run to run; everything else may not."""
    if isinstance(value, dict):
        return {
            key: "<volatile>" if key in VOLATILE and item is not None
            else "<id>" if key == "id"  # grant ids depend on what ran before
            else normalize(item)
            for key, item in value.items()
        }  # fmt: skip
    if isinstance(value, list):
        return [normalize(item) for item in value]
    if isinstance(value, str):
        return re.sub(r"token:[0-9a-f]{32}", "token:<id>", value)
    return value


def outcomes(*target: str, **env: str) -> list[tuple[int, Any, str]]:
    seen = []
    for command in SCRIPT:
        result = run(*command, *target, "--json", CARGOHOLD_NEW_PASSWORD=NEW_PASSWORD,
                     **env)  # fmt: skip
        answer = normalize(json.loads(result.stdout)) if result.stdout else None
        seen.append((result.exit_code, answer, result.stderr))
    return seen


def test_both_backends_answer_alike(data_dir: Path, server: ServerProcess) -> None:
    here = outcomes(*local(data_dir))
    there = outcomes(*remote(server), CARGOHOLD_PASSWORD=ROOT_PASSWORD)
    for command, mine, theirs in zip(SCRIPT, here, there, strict=True):
        assert mine == theirs, command
    exit_codes = [code for code, _, _ in here]
    assert exit_codes == [
        0,
        0,
        0,
        0,
        1,
        0,
        0,
        1,
        0,
        0,
        0,
        1,
        0,
        1,
        1,
        1,
        0,
        1,
        0,
        0,
        0,
        1,
    ]
