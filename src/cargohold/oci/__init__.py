"""Pure OCI protocol code: digests, names, media types, manifests, errors."""
