"""Contract tier: one suite per Protocol, run over every implementation."""
