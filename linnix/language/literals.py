"""Literal texts with a meaning of their own: where an error is in one, and network
addresses (``in_cidr "10.0.0.0/8"``, ``is_private``).

A network is parsed once, when the rule is compiled (:func:`parse_network`); at
run time an address (hostile text: a process picks whom it connects to, and a
unix socket's path is any text) is parsed by the standard library's
:mod:`ipaddress`, which splits on dots and colons and never backtracks, and the
answers for the last :data:`CACHE_MAX` texts are kept.  A text that is not an
address is in no network.  An IPv4 address mapped into IPv6
(``::ffff:10.0.0.1``, as a dual-stack socket reports an IPv4 peer) is judged as
the IPv4 address it carries.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable

from . import nodes as n
from .regex import PatternError
from .source import Span

__all__ = ["CACHE_MAX", "PRIVATE", "address", "fragment_span", "in_network", "is_private",
           "parse_network"]

CACHE_MAX = 4096  # addresses whose parse is kept
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# What 'is_private' means, and docs/language.md says: loopback, RFC 1918, shared
# address space (RFC 6598, carrier-grade NAT), link-local, and the IPv6 unique local
# and link-local networks.
PRIVATE: tuple[Network, ...] = tuple(ipaddress.ip_network(text) for text in (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
    "169.254.0.0/16", "::1/128", "fc00::/7", "fe80::/10",
))


def parse_network(text: str) -> Network:
    """The network a CIDR literal names; ValueError saying what is wrong with it.

    Host bits set (``10.0.0.1/8``) are an error: the rule most likely meant
    another prefix length.  A bare address is the network of that one address.
    """
    if not text or text != text.strip():
        raise ValueError(f"'{text}' is not a network in CIDR notation")
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as err:
        raise ValueError(str(err).replace("does not appear to be an IPv4 or IPv6 network",
                                          "is not a network in CIDR notation")) from None


@functools.lru_cache(maxsize=CACHE_MAX)
def address(text: str) -> Address | None:
    """The address ``text`` spells (an IPv4-mapped IPv6 one as IPv4), None if none."""
    if len(text) > 64:  # no address is this long: not worth parsing
        return None
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def in_network(text: str) -> Callable[[object], bool]:
    """A test of whether an address (a text) is in the network ``text`` names."""
    network = parse_network(text)

    def test(value: object) -> bool:
        addr = address(value) if isinstance(value, str) else None
        return addr is not None and addr.version == network.version and addr in network

    return test


def is_private(value: object) -> bool:
    """Whether an address (a text) is in one of the :data:`PRIVATE` networks."""
    addr = address(value) if isinstance(value, str) else None
    return addr is not None and any(
        addr.version == net.version and addr in net for net in PRIVATE)


def fragment_span(literal: n.String, err: PatternError) -> Span:
    """Where the error is in a string literal; the whole literal when that is unclear
    (escapes in the literal move the pattern's characters away from the source's)."""
    span, fragment = literal.span, err.fragment
    if not fragment or "\\" in span.text or fragment == literal.value:
        return span
    at = literal.value.find(fragment) if err.at is None else err.at
    if at < 0:
        return span
    start = span.start + 1 + at
    return span.source.span(start, start + len(fragment))
