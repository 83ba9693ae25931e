"""Which host names are this machine: the one rule the hooks (clear text allowed) and the emulator share."""

from __future__ import annotations

from ipaddress import ip_address

#: Addresses that mean "every interface" when bound to; a client reaches such a server on loopback.
WILDCARD_ADDRESSES = frozenset({"", "0.0.0.0", "::"})


def is_loopback_host(host: str) -> bool:
    """
    Whether a URL's host name is this machine (127.0.0.0/8, ::1, localhost): clear text never leaves it.

    :param host: A host name or IP address, without port or brackets.
    """
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False
