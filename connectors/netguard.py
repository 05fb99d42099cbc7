"""Which addresses count as krsync's own network, for every way a connector opens a connection.

The HTTP layer (``app/core/http.py``) and the ``sql`` connector's database drivers refuse the same
addresses (SPEC section 5: "no connector may reach a loopback, private or link-local address"
unless ``KRSYNC_ALLOW_PRIVATE_NETWORKS`` is true), so the rule is written once, here, where both
may import it.
"""

from __future__ import annotations

import ipaddress
import os
import socket

ALLOW_PRIVATE_ENV = "KRSYNC_ALLOW_PRIVATE_NETWORKS"
# What pydantic reads as true for ``Settings.allow_private_networks``: the HTTP layer's verdict
# and the drivers' must not differ on how the flag is spelled.
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})


def private_networks_allowed() -> bool:
    """Whether the admin opted in to on-premises sources (read when a connection is opened)."""
    return os.environ.get(ALLOW_PRIVATE_ENV, "").strip().lower() in _TRUE


def non_public_reason(address: str) -> str | None:
    """Why ``address`` (an IP literal) is not a public one, or None when it is."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 reaches 127.0.0.1
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        # Catches the rest of the special-purpose ranges, e.g. 100.64.0.0/10 (carrier NAT,
        # where some clouds put their metadata service).
        ("non-public", not ip.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


def first_private(host: str, port: int | None) -> tuple[str, str] | None:
    """The first address ``host`` resolves to for a TCP connection that is not public, with
    :func:`non_public_reason`'s word for it; None when every one is public (the driver may pick
    any). For a connector whose driver opens its own sockets (the HTTP layer checks its own);
    raises ``OSError`` or ``UnicodeError`` when the host doesn't resolve."""
    for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP):
        address = str(info[4][0])
        reason = non_public_reason(address)
        if reason is not None:
            return address, reason
    return None
