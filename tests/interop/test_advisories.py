"""An advisory end to end: real pulls, then every channel tells exactly who pulled.

``cargohold serve`` with token auth and two worker processes, email to an ``aiosmtpd``
on loopback, an organization webhook to a loopback receiver, a CI identity from a
loopback OIDC issuer. skopeo and podman pull as a user, a pull token, the CI identity
and anonymously (the starter tag); a second user pulls another image. An advisory on
the first image then reaches exactly its pullers, once per channel and revision: the
inbox (read with each one's own credentials), email (one per address), the webhook
(signature verified with ``standardwebhooks``) and the ``Warning`` header.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook

from cargohold.metadata import schema as t
from cargohold.metadata.database import Database
from tests.oidc_issuer import OidcIssuer
from tests.prerequisites import require
from tests.smtp import SmtpServer
from tests.webhook_receiver import Receiver, serve

from .clients import ContainersEnv
from .layouts import Image, LayoutWriter
from .servers import RegistryServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from email.message import EmailMessage
    from pathlib import Path

pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]

ADMIN = ("root", "advisories-admin-password")
ALICE = ("alice", "alice-password-1")
BOB = ("bob", "bob-password-1")
CI = "ci-build"
CI_SUBJECT = "repo:acme/app:ref:refs/heads/main"
SENDER = "registry@cargohold.example"
CONTACT = "security@acme.example"
ALICE_EMAIL = "alice@example.org"
BOB_EMAIL = "bob@example.org"
WAIT = 60.0
ADVISORY = "CH-2026-0001"


@dataclass(frozen=True, slots=True)
class Images:
    path: Path
    a: Image
    b: Image

    def ref(self, tag: str) -> str:
        return f"oci:{self.path}:{tag}"


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Images]:
    """Two different single-platform images, ``a`` and ``b``."""
    path = tmp_path_factory.mktemp("advisory-layout")
    writer = LayoutWriter(path)
    a = writer.add_image({"release.txt": b"1.0, vulnerable\n"})
    b = writer.add_image({"release.txt": b"2.0, fixed\n"})
    writer.tag(a.manifest, "a")
    writer.tag(b.manifest, "b")
    writer.close()
    yield Images(path, a, b)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


@pytest.fixture
def issuer() -> Iterator[OidcIssuer]:
    with OidcIssuer(keys=("RSA",)) as running:
        yield running


@pytest.fixture
def registry(
    smtp: SmtpServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegistryServer]:
    workdir = tmp_path_factory.mktemp("advisory-registry")
    server = RegistryServer(
        "cargohold",
        workdir,
        settings={
            "CARGOHOLD_AUTH_MODE": "token",
            "CARGOHOLD_ADMIN_USER": ADMIN[0],
            "CARGOHOLD_ADMIN_PASSWORD": ADMIN[1],
            "CARGOHOLD_SERVER_WORKERS": "2",
            "CARGOHOLD_SMTP_HOST": "127.0.0.1",
            "CARGOHOLD_SMTP_PORT": str(smtp.port),
            "CARGOHOLD_SMTP_SECURITY": "none",
            "CARGOHOLD_SMTP_SENDER": SENDER,
            "CARGOHOLD_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
            "CARGOHOLD_PULLS_FLUSH_INTERVAL_SECONDS": "0.2",
            "CARGOHOLD_OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
            "CARGOHOLD_ADVISORIES_WARNING_REFRESH_SECONDS": "0.5",
        },
    )
    try:
        server.start()
        yield server
        errors = server.errors_since([0] * len(server.log_paths))
        assert not errors, "the registry logged errors:\n" + "\n".join(errors[:20])
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def db(registry: RegistryServer) -> Iterator[Database]:
    """The server's own SQLite database, to look at the outbox."""
    database = Database(f"sqlite:///{registry.data_dir / 'cargohold.db'}")
    yield database
    asyncio.run(database.close())


@pytest.fixture
def env(
    registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ContainersEnv]:
    require("skopeo", "podman")
    root = tmp_path_factory.mktemp("advisory-containers")
    containers = ContainersEnv(root, registry.host)
    containers.write()
    yield containers
    shutil.rmtree(root, ignore_errors=True)


def wait_for(what: str, check: Callable[[], bool], *, timeout: float = WAIT) -> None:
    """Poll ``check`` until true (bounded); no sleep stands in for synchronisation."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


class Api:
    """``/api/v1`` with HTTP Basic credentials; fails the test on an unexpected
    status."""

    def __init__(self, base: str, auth: tuple[str, str]) -> None:
        self._client = httpx.Client(base_url=f"{base}/api/v1", auth=auth, timeout=30)

    def call(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = self._client.request(method, path, json=body)
        assert response.status_code == status, (method, path, response.text)
        return response.json() if response.content else None

    def close(self) -> None:
        self._client.close()


def pull(env: ContainersEnv, ref: str, out: Path, *creds: str) -> None:
    """``skopeo copy`` from the registry into an OCI layout (a real pull)."""
    env.run(
        env.skopeo(
            "copy", "--quiet", "--src-tls-verify=false", *creds, ref, f"oci:{out}:x"
        )
    )


def identities_of(api: Api, digest: str) -> set[str]:
    return {p["identity"] for p in api.call("GET", f"/pulls?digest={digest}")["pulls"]}


def notices(registry: RegistryServer, auth: tuple[str, str]) -> list[dict[str, Any]]:
    response = httpx.get(f"{registry.url}/api/v1/notices", auth=auth, timeout=30)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["notices"]
    return found


def revision_of(message: EmailMessage) -> int:
    header = str(message["X-Cargohold-Advisory"])
    assert header.startswith(f"{ADVISORY}; revision=")
    return int(header.rpartition("=")[2])


def outbox_states(db: Database) -> Counter[tuple[str, str]]:
    """(channel, state) -> count, straight from the server's database."""
    o = t.outbox
    query = sa.select(o.c.channel, o.c.state, sa.func.count()).group_by(
        o.c.channel, o.c.state
    )
    rows = db.run_sync(lambda conn: conn.execute(query).all())
    return Counter({(c, s): n for c, s, n in rows})


def settled(db: Database) -> bool:
    return not any(state == "pending" for _, state in outbox_states(db))


def webhook_events(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    """Every delivery, verified with ``standardwebhooks`` (raises on a bad one)."""
    hook = Webhook(secret)
    events = []
    for request in list(receiver.requests):
        verified = hook.verify(request.body, request.headers)
        assert isinstance(verified, dict)
        verified["webhook-id"] = request.headers["webhook-id"]
        events.append(verified)
    return events


def warnings(
    registry: RegistryServer, repo: str, reference: str, token: str
) -> list[str]:
    response = httpx.get(
        f"{registry.url}/v2/{repo}/manifests/{reference}",
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.oci.image.manifest.v1+json",
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.headers.get_list("warning")


def test_an_advisory_reaches_exactly_who_pulled_on_every_channel_once(  # noqa: PLR0915 - one story, told in order
    registry: RegistryServer,
    db: Database,
    env: ContainersEnv,
    images: Images,
    smtp: SmtpServer,
    receiver: Receiver,
    issuer: OidcIssuer,
    tmp_path: Path,
) -> None:
    org = f"acme{uuid.uuid4().hex[:6]}"
    repo = f"{org}/app"
    admin = Api(registry.url, ADMIN)
    try:
        # -- set up: organization, contact, webhook, users, token, CI identity
        admin.call("POST", "/orgs", {"name": org}, status=201)
        admin.call("PUT", f"/orgs/{org}/contact", {"security_contact": CONTACT})
        hook = admin.call(
            "POST",
            f"/orgs/{org}/webhooks",
            {
                "url": receiver.url,
                "events": ["advisory.published", "advisory.updated"],
            },
            status=201,
        )
        for (name, password), address in ((ALICE, ALICE_EMAIL), (BOB, BOB_EMAIL)):
            admin.call(
                "POST", "/users", {"name": name, "password": password}, status=201
            )
            admin.call("PUT", f"/users/{name}/email", {"email": address})
            admin.call("PUT", f"/orgs/{org}/members/{name}", {"role": "puller"})
        token = admin.call(
            "POST", f"/orgs/{org}/tokens", {"description": "prod"}, status=201
        )
        admin.call(
            "POST",
            "/oidc-identities",
            {
                "name": CI,
                "issuer": issuer.url,
                "audience": "cargohold",
                "subject": CI_SUBJECT,
            },
            status=201,
        )
        admin.call(
            "POST",
            f"/orgs/{org}/grants",
            {"principal": f"oidc:{CI}", "repository": f"{org}/*", "role": "puller"},
            status=201,
        )
        id_token = issuer.mint(CI_SUBJECT, "cargohold", expires_in=1800)

        # -- push A at 1.0 and latest (the starter tag), B at 2.0
        push = f"--dest-creds={ADMIN[0]}:{ADMIN[1]}"
        for source, tag in (("a", "1.0"), ("a", "latest"), ("b", "2.0")):
            env.run(
                env.skopeo(
                    "copy",
                    "--quiet",
                    "--dest-tls-verify=false",
                    push,
                    images.ref(source),
                    env.docker(repo, tag),
                )
            )
        admin.call("PUT", f"/repositories/{repo}/settings", {"visibility": "public"})
        digest_a, digest_b = images.a.manifest.digest, images.b.manifest.digest

        # -- pull with the real clients
        env.run(
            env.podman(
                "pull",
                "--quiet",
                "--tls-verify=false",
                f"--creds={ALICE[0]}:{ALICE[1]}",
                env.image(repo, "1.0"),
            )
        )
        pull(
            env,
            env.docker(repo, "1.0"),
            tmp_path / "token",
            f"--src-creds=prod:{token['secret']}",
        )
        pull(
            env,
            env.docker(repo, "1.0"),
            tmp_path / "ci",
            f"--src-creds={CI}:{id_token}",
        )
        pull(env, env.docker(repo, "latest"), tmp_path / "anonymous")
        env.run(
            env.podman(
                "pull",
                "--quiet",
                "--tls-verify=false",
                f"--creds={BOB[0]}:{BOB[1]}",
                env.image(repo, "2.0"),
            )
        )
        pullers_of_a = {
            f"user:{ALICE[0]}",
            f"token:{token['id']}",
            f"oidc:{CI}",
            "anonymous:127.0.0.1",
        }
        # Both worker processes flush their pulls within the flush interval.
        wait_for(
            "every pull recorded",
            lambda: (
                identities_of(admin, digest_a) == pullers_of_a
                and identities_of(admin, digest_b) == {f"user:{BOB[0]}"}
            ),
        )

        # -- publish an advisory on A
        admin.call(
            "POST",
            "/advisories",
            {
                "id": ADVISORY,
                "title": "libfoo heap overflow",
                "severity": "high",
                "state": "current",
                "description": "Upgrade to 2.0.",
                "affected": [{"repository": repo, "digests": [digest_a]}],
                "fixed_in": f"{repo}:2.0",
            },
            status=201,
        )
        affected = admin.call("GET", f"/advisories/{ADVISORY}/affected")["identities"]
        assert {e["identity"] for e in affected} == pullers_of_a
        by_identity = {e["identity"]: e for e in affected}
        assert by_identity[f"user:{ALICE[0]}"]["contact"] == ALICE_EMAIL
        assert by_identity[f"token:{token['id']}"]["contact"] == CONTACT
        assert by_identity[f"oidc:{CI}"]["contact"] == CONTACT
        assert by_identity["anonymous:127.0.0.1"]["contact"] is None
        assert all(e["organization"] == org for e in affected)
        assert all(e["digests"] == [digest_a] for e in affected)

        readers = {
            "alice": ALICE,
            "token": ("prod", token["secret"]),
            "ci": (CI, id_token),
            "bob": BOB,
        }

        def told(revisions: int) -> bool:
            return (
                len(smtp.messages) >= 2 * revisions
                and len(receiver.requests) >= revisions
                and all(
                    len(notices(registry, readers[who])) >= revisions
                    for who in ("alice", "token", "ci")
                )
                and settled(db)
            )

        wait_for("the first revision told on every channel", lambda: told(1))
        secret = hook["secret"]
        check_channels(
            registry,
            smtp,
            receiver,
            secret,
            readers,
            revisions=1,
            ids=(digest_a, token["id"]),
        )

        # -- the Warning header, on the affected manifest only
        bearer = httpx.get(
            f"{registry.url}/token",
            params={"service": "cargohold", "scope": f"repository:{repo}:pull"},
            auth=("prod", token["secret"]),
            timeout=30,
        ).json()["token"]
        expected = f'299 - "{ADVISORY}: libfoo heap overflow; fixed in {repo}:2.0"'
        # The other worker process sees the advisory within warning_refresh_seconds.
        wait_for(
            "the Warning header from both workers",
            lambda: all(
                warnings(registry, repo, ref, bearer) == [expected]
                for ref in ("1.0", digest_a, "1.0", digest_a)
            ),
        )
        assert warnings(registry, repo, "2.0", bearer) == []
        assert warnings(registry, repo, digest_b, bearer) == []

        def head_warnings(ref: str) -> list[str]:
            head = httpx.head(
                f"{registry.url}/v2/{repo}/manifests/{ref}",
                headers={"Authorization": f"Bearer {bearer}"},
                timeout=30,
            )
            assert head.status_code == 200
            return head.headers.get_list("warning")

        wait_for(
            "the Warning header on HEAD", lambda: head_warnings("1.0") == [expected]
        )
        assert head_warnings("2.0") == []
        # Anyone: an anonymous client's token for the starter tag.
        anonymous = httpx.get(
            f"{registry.url}/token",
            params={"service": "cargohold", "scope": f"repository:{repo}:pull"},
            timeout=30,
        ).json()["token"]
        wait_for(
            "the Warning header for an anonymous client",
            lambda: warnings(registry, repo, "latest", anonymous) == [expected],
        )

        # -- an update: a new revision, told once more on every channel
        admin.call("PATCH", f"/advisories/{ADVISORY}", {"severity": "critical"})
        wait_for("the second revision told on every channel", lambda: told(2))
        check_channels(
            registry,
            smtp,
            receiver,
            secret,
            readers,
            revisions=2,
            ids=(digest_a, token["id"]),
        )

        # -- a fan-out taken again (as after a crash) adds nothing
        again = (
            sa.update(t.outbox)
            .where(t.outbox.c.channel == "fanout")
            .values(state="pending", next_attempt_at=0.0, lease_until=0.0)
        )
        db.run_sync(lambda conn: conn.execute(again))
        wait_for("the repeated fan-outs done", lambda: settled(db))
        assert outbox_states(db)[("fanout", "done")] == 2
        check_channels(
            registry,
            smtp,
            receiver,
            secret,
            readers,
            revisions=2,
            ids=(digest_a, token["id"]),
        )
    finally:
        admin.close()


def check_channels(
    registry: RegistryServer,
    smtp: SmtpServer,
    receiver: Receiver,
    secret: str,
    readers: dict[str, tuple[str, str]],
    *,
    revisions: int,
    ids: tuple[str, str],
) -> None:
    """After ``revisions`` revisions: each channel told each recipient once per
    revision, and nobody else."""
    digest_a, token_id = ids
    wanted = list(range(1, revisions + 1))
    # Inbox: one notice per revision for each identity that pulled A, read with its
    # own credentials; none for bob.
    for who in ("alice", "token", "ci"):
        found = notices(registry, readers[who])
        assert sorted(n["revision"] for n in found) == wanted, (who, found)
        for notice in found:
            assert notice["advisory"] == ADVISORY
            assert notice["digests"] == [digest_a]
            assert notice["fixed_in"].endswith(":2.0")
    assert notices(registry, readers["bob"]) == []
    # Email: one per address and revision; the contact's lists the token and CI pulls.
    messages = smtp.messages
    got = Counter((str(m["To"]), revision_of(m)) for m in messages)
    assert got == Counter(
        {(a, r): 1 for a in (ALICE_EMAIL, CONTACT) for r in wanted}
    ), got
    for message in messages:
        body = message.get_content()
        assert digest_a in body
        if str(message["To"]) == CONTACT:
            assert f"token:{token_id}" in body
            assert f"oidc:{CI}" in body
            assert "user:alice" not in body
        else:
            assert "user:alice" in body
            assert CONTACT not in body
        assert str(message["Auto-Submitted"]) == "auto-generated"
    assert len({str(m["Message-ID"]) for m in messages}) == len(messages)
    # Webhook: one event per revision for the one affected organization, signed.
    events = webhook_events(receiver, secret)
    assert [(e["type"], e["data"]["revision"]) for e in events] == [
        ("dev.cargohold.advisory.published", 1),
        ("dev.cargohold.advisory.updated", 2),
    ][:revisions]
    assert len({e["webhook-id"] for e in events}) == revisions
    for event in events:
        assert event["data"]["advisory"] == ADVISORY
        assert event["data"]["digests"] == [digest_a]
    assert json.dumps(events).count(BOB_EMAIL) == 0
