"""Who is on the other end of a pull: the client address behind trusted proxies, and
the identity an anonymous pull is recorded under.

Pure (no I/O, no settings). ``X-Forwarded-For`` is believed only when the peer that
sent it is a trusted proxy; then the client is the right-most address of the chain that
is not itself trusted (each proxy appends the address it received from, so anything to
the left of that may be forged by the client).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class BadNetwork(ValueError):
    """A trusted-proxy entry that is not an address or CIDR network."""


def parse_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """``entries`` (CIDRs or single addresses) as networks.

    Raises:
        BadNetwork: an entry is neither.
    """
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise BadNetwork(f"{entry!r} is not an address or CIDR network") from exc
    return tuple(networks)


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[::1]:port" or "[::1]"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "1.2.3.4:port"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address in network for network in networks)


def trusted_peer(peer: str, trusted: tuple[Network, ...]) -> bool:
    """Whether the TCP peer ``peer`` is one of the ``trusted`` proxies."""
    address = _address(peer)
    return address is not None and _trusted(address, trusted)


def client_address(
    peer: str, forwarded_for: str | None, trusted: tuple[Network, ...]
) -> str:
    """The address a pull came from.

    ``peer`` is the TCP peer; ``forwarded_for`` the ``X-Forwarded-For`` header (all its
    values joined by commas), used only when ``peer`` is in ``trusted``.
    """
    peer_address = _address(peer)
    if peer_address is None or not forwarded_for or not _trusted(peer_address, trusted):
        return str(peer_address) if peer_address is not None else peer[:64]
    for hop in reversed(forwarded_for.split(",")):
        address = _address(hop)
        if address is None:
            # A malformed hop: nothing left of it can be believed.
            break
        if not _trusted(address, trusted):
            return str(address)
        peer_address = address
    # Every hop was a trusted proxy (or garbage): the left-most one we could read.
    return str(peer_address)


def anonymous_identity(
    client: str, *, granularity: str, ipv4_prefix: int, ipv6_prefix: int
) -> str:
    """``anonymous:<address>``, or ``anonymous:<network>/<prefix>`` for ``prefix``."""
    if granularity != "prefix":
        return f"anonymous:{client}"
    address = _address(client)
    if address is None:
        return f"anonymous:{client}"
    bits = ipv4_prefix if isinstance(address, ipaddress.IPv4Address) else ipv6_prefix
    network = ipaddress.ip_network(f"{address}/{bits}", strict=False)
    return f"anonymous:{network}"
