"""The bundle of services one registry instance runs, built by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from cargohold.metadata.store import MetadataStore
from cargohold.registry.blobs import BlobService
from cargohold.registry.manifests import ManifestService
from cargohold.registry.repositories import RepositoryService
from cargohold.registry.uploads import UploadService
from cargohold.storage.base import BlobStore


@dataclass(frozen=True, slots=True)
class Services:
    meta: MetadataStore
    store: BlobStore
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService
    repositories: RepositoryService

    @classmethod
    def build(cls, meta: MetadataStore, store: BlobStore) -> Services:
        return cls(
            meta=meta,
            store=store,
            blobs=BlobService(meta, store),
            uploads=UploadService(meta, store),
            manifests=ManifestService(meta),
            repositories=RepositoryService(meta),
        )
