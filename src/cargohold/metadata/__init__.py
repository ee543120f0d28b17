"""Metadata: repositories, links, manifests, tags and upload sessions."""
