"""Unit tier: pure code and in-process fakes, no sockets."""
