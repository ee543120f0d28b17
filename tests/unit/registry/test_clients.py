"""The client address behind trusted proxies, and anonymous identities."""

from __future__ import annotations

import pytest

from cargohold.registry.clients import (
    BadNetwork,
    anonymous_identity,
    client_address,
    parse_networks,
)

PROXIES = parse_networks(["10.0.0.0/8", "192.0.2.1", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # no proxy configured for this peer: X-Forwarded-For is never believed
        ("203.0.113.9", "198.51.100.7", "203.0.113.9"),
        ("203.0.113.9", None, "203.0.113.9"),
        # a trusted proxy: the right-most untrusted hop
        ("10.1.2.3", "198.51.100.7", "198.51.100.7"),
        ("10.1.2.3", "6.6.6.6, 198.51.100.7", "198.51.100.7"),
        ("10.1.2.3", "6.6.6.6, 198.51.100.7, 10.9.9.9", "198.51.100.7"),
        ("192.0.2.1", "198.51.100.7 , 10.0.0.5", "198.51.100.7"),
        # a forged left part cannot hide the real client
        ("10.1.2.3", "10.0.0.1, 198.51.100.7", "198.51.100.7"),
        # every hop trusted: the left-most
        ("10.1.2.3", "10.0.0.7, 10.0.0.8", "10.0.0.7"),
        # malformed hops stop the walk where the chain can no longer be believed
        ("10.1.2.3", "198.51.100.7, garbage", "10.1.2.3"),
        ("10.1.2.3", "", "10.1.2.3"),
        # ports and IPv6
        ("10.1.2.3", "198.51.100.7:4711", "198.51.100.7"),
        ("fd00::1", "[2001:db8::5]:443", "2001:db8::5"),
        ("fd00::1", "2001:db8::5", "2001:db8::5"),
        ("::ffff:10.1.2.3", "198.51.100.7", "198.51.100.7"),
        ("2001:db8::1", "198.51.100.7", "2001:db8::1"),
        # a peer that is not an address (a unix socket, the local CLI)
        ("local:alice", "198.51.100.7", "local:alice"),
    ],
)
def test_client_address(peer: str, forwarded: str | None, expected: str) -> None:
    assert client_address(peer, forwarded, PROXIES) == expected


def test_no_trusted_proxies_means_the_peer() -> None:
    assert client_address("10.1.2.3", "198.51.100.7", ()) == "10.1.2.3"


def test_bad_network_is_refused() -> None:
    with pytest.raises(BadNetwork, match="not-a-cidr"):
        parse_networks(["not-a-cidr"])


@pytest.mark.parametrize(
    ("client", "granularity", "expected"),
    [
        ("198.51.100.7", "address", "anonymous:198.51.100.7"),
        ("198.51.100.7", "prefix", "anonymous:198.51.100.0/24"),
        ("2001:db8:1:2:3::9", "prefix", "anonymous:2001:db8:1::/48"),
        ("2001:db8:1:2:3::9", "address", "anonymous:2001:db8:1:2:3::9"),
        ("local:alice", "prefix", "anonymous:local:alice"),
    ],
)
def test_anonymous_identity(client: str, granularity: str, expected: str) -> None:
    identity = anonymous_identity(
        client, granularity=granularity, ipv4_prefix=24, ipv6_prefix=48
    )
    assert identity == expected


def test_prefix_lengths_are_settings() -> None:
    assert (
        anonymous_identity(
            "198.51.100.7", granularity="prefix", ipv4_prefix=16, ipv6_prefix=48
        )
        == "anonymous:198.51.0.0/16"
    )
