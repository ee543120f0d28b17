"""The bundle of services one registry instance runs, built by the composition root."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import httpx

from cargohold.auth.tokens import TokenIssuer, TokenVerifier
from cargohold.metadata.accounts import AccountStore
from cargohold.metadata.advisories import AdvisoryStore
from cargohold.metadata.delivery import NoticeStore, OutboxStore
from cargohold.metadata.instruments import InstrumentStore
from cargohold.metadata.outbox import (
    ATTEST,
    DESCRIBE,
    EMAIL,
    FANOUT,
    MATCH,
    SIGN,
    WEBHOOK,
)
from cargohold.metadata.packages import PackageStore
from cargohold.metadata.pulls import PullStore
from cargohold.metadata.signatures import SignatureStore
from cargohold.metadata.store import MetadataStore
from cargohold.metadata.vulns import VulnerabilityStore
from cargohold.metadata.web import WebStore
from cargohold.metadata.webhooks import WebhookIndex
from cargohold.registry.access import AccessService
from cargohold.registry.accounts import Authenticator
from cargohold.registry.admin import AdminService
from cargohold.registry.advisories import AdvisoryService
from cargohold.registry.attach import Attacher, AttachmentReader
from cargohold.registry.attestations import AttestationService
from cargohold.registry.audit import AuditTrail
from cargohold.registry.blobs import BlobService
from cargohold.registry.catalog import CatalogService
from cargohold.registry.email import EmailSender
from cargohold.registry.image_metadata import ImageMetadataService
from cargohold.registry.jobs import PushJobs
from cargohold.registry.keyring import KeyRing
from cargohold.registry.limits import TagLimits
from cargohold.registry.manifests import ManifestService
from cargohold.registry.notices import NoticeService
from cargohold.registry.outbox import Outbox
from cargohold.registry.pulls import PullService
from cargohold.registry.repositories import RepositoryService
from cargohold.registry.sbom.service import SbomService
from cargohold.registry.schedules import Scheduler, ScheduleStore
from cargohold.registry.signing.cosign import CosignFormat
from cargohold.registry.signing.keys import KeyStore
from cargohold.registry.signing.service import SigningService
from cargohold.registry.signing.simple import SimpleSigningFormat
from cargohold.registry.status import StatusService
from cargohold.registry.tag_history import TagHistoryService
from cargohold.registry.uploads import UploadService
from cargohold.registry.verify import VerifyService
from cargohold.registry.vulns import VulnerabilityService
from cargohold.registry.web_sessions import WebSessions
from cargohold.registry.webhook_delivery import WebhookDispatcher, WebhookSender
from cargohold.registry.webhooks import WebhookService
from cargohold.settings import (
    AdvisorySettings,
    AuthSettings,
    OutboxSettings,
    PullSettings,
    SbomSettings,
    SigningSettings,
    SmtpSettings,
    WebhookSettings,
)
from cargohold.storage.base import BlobStore


@dataclass(frozen=True, slots=True)
class AuthServices:
    accounts: AccountStore
    access: AccessService
    authenticator: Authenticator
    keyring: KeyRing
    issuer: TokenIssuer
    verifier: TokenVerifier
    audit: AuditTrail
    admin: AdminService
    # Fetches CI identity issuers' keys; closed with the services.
    oidc_http: httpx.AsyncClient

    @classmethod
    def build(
        cls,
        accounts: AccountStore,
        settings: AuthSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> AuthServices:
        from cargohold.auth.oidc import JwksCache  # noqa: PLC0415

        audit = AuditTrail(accounts)
        keyring = KeyRing(
            accounts,
            algorithm=settings.signing_algorithm,
            retention_hours=settings.key_retention_hours,
        )
        oidc_http = httpx.AsyncClient(timeout=10.0)
        jwks = JwksCache(oidc_http)
        access = AccessService(accounts, settings, clock=clock)
        return cls(
            accounts=accounts,
            access=access,
            authenticator=Authenticator(accounts, settings, audit, jwks, clock=clock),
            keyring=keyring,
            issuer=TokenIssuer(
                keyring.current,
                issuer=settings.issuer,
                service=settings.service,
                ttl=settings.token_ttl_seconds,
            ),
            verifier=TokenVerifier(
                keyring.current, issuer=settings.issuer, service=settings.service
            ),
            audit=audit,
            admin=AdminService(accounts, access, audit),
            oidc_http=oidc_http,
        )


@dataclass(frozen=True, slots=True)
class Services:
    meta: MetadataStore
    store: BlobStore
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService
    repositories: RepositoryService
    auth: AuthServices
    webhooks: WebhookService
    # The EventSink every service emits to; the outbox's ``webhook`` channel handler.
    dispatcher: WebhookDispatcher
    webhook_sender: WebhookSender
    advisories: AdvisoryService
    tag_history: TagHistoryService
    pulls: PullService
    outbox: Outbox
    notices: NoticeService
    # Channel ``email``'s sender; None when ``smtp.host`` is not set.
    email: EmailSender | None
    # Writes what the registry attaches to images (signatures, attestations).
    attacher: Attacher
    # The ``describe`` job and SBOM reads.
    sbom: SbomService
    # One manifest's facts, packages, signatures and vulnerabilities together.
    image_metadata: ImageMetadataService
    # The OSV feed, matching (outbox channel ``match``) and the vulnerability view.
    vulns: VulnerabilityService
    # The registry's signatures (the ``sign`` job when signing is enabled) and the
    # signature API extension's store.
    signing: SigningService
    # Reads attachments back (cosign tags, referrers, their blobs) as a caller.
    attachments: AttachmentReader
    # The cosign signature format (the ``sign`` job runs it with the others).
    cosign: CosignFormat
    # The ``attest`` handler (registered when signing is enabled) and ``verify``.
    attestations: AttestationService
    verifier: VerifyService
    # Leases for periodic jobs that must run once across processes and replicas.
    scheduler: Scheduler
    # The web catalog's reads and its sign-in sessions.
    catalog: CatalogService
    web_sessions: WebSessions
    # Makes the signing keys when signing is enabled and none exist (blocking).
    make_signing_keys: Callable[[], object] | None = None
    # Releases what the key store holds open (a gpg-agent); blocking.
    close_signing_keys: Callable[[], object] | None = None
    # What /metrics and /readyz read from the database (None: no SQL database).
    instruments: InstrumentStore | None = None
    # The status page: its checks, incidents and maintenances (issue #9).
    status: StatusService | None = None

    @classmethod
    def build(
        cls,
        meta: MetadataStore,
        store: BlobStore,
        accounts: AccountStore,
        settings: AuthSettings,
        *,
        advisory_store: AdvisoryStore,
        advisory_settings: AdvisorySettings = AdvisorySettings(),  # noqa: B008 - frozen
        pull_store: PullStore,
        schedules: ScheduleStore,
        pull_settings: PullSettings,
        trusted_proxies: tuple[str, ...] = (),
        outbox_store: OutboxStore,
        notice_store: NoticeStore,
        outbox_settings: OutboxSettings,
        smtp_settings: SmtpSettings,
        public_url: str | None = None,
        max_blob_bytes: int = 0,
        webhook_index: WebhookIndex,
        webhooks: WebhookSettings | None = None,
        jobs: PushJobs | None = None,
        signature_store: SignatureStore,
        signing_keys: KeyStore,
        signing_settings: SigningSettings = SigningSettings(),  # noqa: B008 - frozen
        public_host: str = "localhost:5000",
        make_signing_keys: Callable[[], object] | None = None,
        close_signing_keys: Callable[[], object] | None = None,
        vuln_store: VulnerabilityStore,
        package_store: PackageStore,
        web_store: WebStore,
        sbom_settings: SbomSettings = SbomSettings(),  # noqa: B008 - frozen
        instruments: InstrumentStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Services:
        """``public_host``: the registry's name in image references (signatures
        and attestations name it). With ``signing_settings.enabled``, this process
        runs the ``sign`` and ``attest`` jobs; ``verifier`` checks signatures
        against ``signing_keys`` either way."""
        limits = TagLimits(meta)
        auth = AuthServices.build(accounts, settings, clock=clock)
        webhook_settings = webhooks or WebhookSettings()
        dispatcher = WebhookDispatcher(webhook_index, clock=clock)
        sender = WebhookSender(webhook_index, webhook_settings, clock=clock)
        pulls = PullService(
            pull_store,
            accounts,
            schedules,
            pull_settings,
            trusted_proxies=trusted_proxies,
            sink=dispatcher,
            clock=clock,
        )
        advisories = AdvisoryService(
            advisory_store,
            auth.access,
            advisory_settings,
            audit=auth.audit,
            events=dispatcher,
            clock=clock,
        )
        scheduler = Scheduler(schedules, clock=clock)
        outbox = Outbox(
            outbox_store,
            outbox_settings,
            clock=clock,
            audit=auth.audit,
            scheduler=scheduler,
        )
        email = None
        if smtp_settings.host is not None:
            email = EmailSender(smtp_settings, registry_url=public_url)
            outbox.register(EMAIL, email.deliver)
        outbox.register(FANOUT, advisories.fan_out)
        outbox.register(WEBHOOK, sender.deliver)
        vulns = VulnerabilityService(
            vuln_store,
            meta,
            limits,
            auth.access,
            advisories,
            window_days=advisory_settings.affected_window_days,
            clock=clock,
        )
        outbox.register(MATCH, vulns.match)
        uploads = UploadService(meta, store, max_blob_bytes=max_blob_bytes)
        manifests = ManifestService(
            meta, limits, events=dispatcher, jobs=jobs, clock=clock
        )
        sbom = SbomService(
            package_store,
            meta,
            store,
            auth.access,
            manifests,
            sbom_settings,
            signing_settings,
            outbox=outbox_store,
            public_url=public_url or f"http://{public_host}",
            clock=clock,
        )
        outbox.register(DESCRIBE, sbom.describe)
        signing = SigningService(
            signing_keys,
            signature_store,
            manifests,
            public_host=public_host,
            clock=clock,
        )
        # One gpg at a time per process: signing never crowds out requests.
        signing.register(
            SimpleSigningFormat(
                signature_store, limiter=anyio.CapacityLimiter(1), clock=clock
            )
        )
        blobs = BlobService(meta, store, limits)
        attacher = Attacher(uploads, manifests)
        attachments = AttachmentReader(manifests, blobs)
        cosign = CosignFormat(attacher, attachments, clock=clock)
        signing.register(cosign)
        attestations = AttestationService(
            attacher,
            attachments,
            signing_keys,
            accounts.oidc,
            builder=public_url or f"https://{public_host}",
            public_host=public_host,
            sbom=sbom,
            clock=clock,
        )
        verifier = VerifyService(
            attachments,
            signing.formats,
            attestations,
            signing_keys,
            public_host=public_host,
        )
        if signing_settings.enabled:
            outbox.register(SIGN, signing.sign_job)
            outbox.register(ATTEST, attestations.handle)
        tag_history = TagHistoryService(advisory_store, auth.access)
        return cls(
            meta=meta,
            store=store,
            blobs=blobs,
            uploads=uploads,
            manifests=manifests,
            repositories=RepositoryService(meta, auth.access),
            auth=auth,
            webhooks=WebhookService(
                webhook_index,
                accounts,
                auth.admin,
                auth.audit,
                webhook_settings,
                sender=sender,
                dispatcher=dispatcher,
                clock=clock,
            ),
            dispatcher=dispatcher,
            webhook_sender=sender,
            advisories=advisories,
            tag_history=tag_history,
            pulls=pulls,
            outbox=outbox,
            notices=NoticeService(notice_store, clock=clock),
            email=email,
            attacher=attacher,
            vulns=vulns,
            signing=signing,
            attachments=attachments,
            cosign=cosign,
            attestations=attestations,
            verifier=verifier,
            scheduler=scheduler,
            catalog=CatalogService(
                web_store,
                auth.access,
                manifests=manifests,
                packages=package_store,
                vulnerabilities=vuln_store,
                verifier=verifier,
                advisories=advisories,
                history=tag_history,
            ),
            web_sessions=WebSessions(
                web_store, auth.authenticator, accounts.users, clock=clock
            ),
            make_signing_keys=(make_signing_keys if signing_settings.enabled else None),
            close_signing_keys=close_signing_keys,
            instruments=instruments,
            sbom=sbom,
            image_metadata=ImageMetadataService(
                auth.access, manifests, package_store, verifier, vulns
            ),
        )

    async def start(self) -> None:
        await self.auth.keyring.load()
        if self.make_signing_keys is not None:
            # Every process may start at once; the key store makes them once.
            await anyio.to_thread.run_sync(self.make_signing_keys)

    async def close(self) -> None:
        await self.outbox.stop()
        if self.status is not None:
            await self.status.close()
        await self.pulls.recorder.close()
        if self.email is not None:
            await self.email.close()
        await self.auth.audit.close()
        await self.auth.oidc_http.aclose()
        await self.webhook_sender.close()
        await self.meta.close()
        await self.store.close()
        if self.close_signing_keys is not None:
            await anyio.to_thread.run_sync(self.close_signing_keys)
