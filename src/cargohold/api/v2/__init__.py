"""The ``/v2`` API (OCI Distribution spec v1.1), one module per resource."""
