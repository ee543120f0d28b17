"""Interop tier: real registry clients against a running registry."""
