"""Where a judge may send requests: the URL policy that every judge call, probe and tagging call passes.

A judge's `base_url` is chosen by an admin, but the request is made by the server, from inside its
network. Without a policy that is a server-side request forgery: a judge pointed at the cloud metadata
endpoint or an internal service makes the server fetch it. The policy decides on the addresses a request
actually connects to, not on the name in the URL: `resolver.PolicyResolver` is the resolver of the connection pool
itself, so a name that resolves to a public address when the judge is saved and to 127.0.0.1 a second
later (DNS rebinding) is refused at the connection, and no request follows a redirect (client.py).

The rules, from the settings of annotate/settings.py's "LLM judges" section:
- only http and https;
- an address inside a network listed in TANDEM_JUDGE_URL_ALLOW is allowed (the deployer's explicit choice);
- otherwise link-local, multicast, unspecified and reserved addresses and the known metadata addresses
  are refused;
- private, loopback and shared (CGNAT) addresses are refused unless TANDEM_JUDGE_ALLOW_PRIVATE (on in
  development, off in production);
- when TANDEM_JUDGE_URL_ALLOW lists host patterns, the URL's host must match one of them.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud metadata services outside the link-local range (Alibaba Cloud, AWS over IPv6).
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in ("100.100.100.200", "fd00:ec2::254"))
_HOST_PATTERN = set("abcdefghijklmnopqrstuvwxyz0123456789-.*_")


class EgressRefused(OSError):
    """The policy refuses this destination. An OSError, so that the connection pool's resolver can raise it
    where a DNS failure would be raised; `refusal_in` finds it again under the SDK's wrappers."""


@dataclass(frozen=True)
class Policy:
    patterns: tuple[str, ...]
    networks: tuple[Network, ...]
    allow_private: bool


_cache: dict[tuple, Policy] = {}


def policy() -> Policy:
    """The policy from the settings (parsed once per distinct value, so overridden settings take effect)."""
    key = (tuple(settings.TANDEM_JUDGE_URL_ALLOW), bool(settings.TANDEM_JUDGE_ALLOW_PRIVATE))
    if key not in _cache:
        patterns, networks = [], []
        for entry in key[0]:
            entry = entry.strip().lower()
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if not entry or not set(entry) <= _HOST_PATTERN:
                raise ImproperlyConfigured(
                    f"TANDEM_JUDGE_URL_ALLOW (annotate/settings.py, LLM judges): {entry!r} is neither a host "
                    "pattern (api.openai.com, *.example.com) nor a network (10.0.0.0/8, 192.168.1.5)"
                )
            patterns.append(entry)
        _cache[key] = Policy(patterns=tuple(patterns), networks=tuple(networks), allow_private=key[1])
    return _cache[key]


def address_of(text: str) -> Address | None:
    """The address `text` spells (an IPv4-mapped IPv6 address as IPv4), or None when it is a name."""
    try:
        address = ipaddress.ip_address(text.strip("[]").split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def address_refusal(host: str, address: Address, rules: Policy | None = None) -> str | None:
    """Why a connection to `address` (which `host` resolved to) is refused, or None when it is allowed."""
    rules = rules or policy()
    if any(address in network for network in rules.networks if network.version == address.version):
        return None
    where = f"{host} ({address})" if str(address) != host else host
    if rules.patterns and not any(fnmatch.fnmatchcase(host.lower(), p) for p in rules.patterns):
        return f"judge URL host {host} is not in TANDEM_JUDGE_URL_ALLOW ({', '.join(rules.patterns)})"
    private = address.is_loopback or address.is_private
    if (
        address in METADATA_ADDRESSES
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or (address.is_reserved and not private)
    ):
        return (
            f"judge URL host {where} is a link-local, metadata or reserved address; judges may not reach it "
            "(list its network in TANDEM_JUDGE_URL_ALLOW to allow it)"
        )
    if (private or not address.is_global) and not rules.allow_private:
        return (
            f"judge URL host {where} is a private or loopback address, refused while TANDEM_JUDGE_ALLOW_PRIVATE "
            "is off (the production default); list its network in TANDEM_JUDGE_URL_ALLOW to allow it"
        )
    return None


def url_refusal(url: str) -> str | None:
    """What the URL alone says: its scheme, its host, and its address when the host is one. Names are
    judged by their addresses when the connection resolves them (`resolver.PolicyResolver`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"judge URL {url!r}: only http and https are allowed"
    host = parts.hostname or ""
    if not host:
        return f"judge URL {url!r} has no host"
    address = address_of(host)
    if address is not None:
        return address_refusal(host, address)
    rules = policy()
    if rules.patterns and not rules.networks and not any(fnmatch.fnmatchcase(host, p) for p in rules.patterns):
        return f"judge URL host {host} is not in TANDEM_JUDGE_URL_ALLOW ({', '.join(rules.patterns)})"
    return None


def url_check(url: str) -> None:
    """At create and change time: the URL's rules and, when its host resolves now, every address it
    resolves to. A host that does not resolve yet passes here; the call resolves it again and checks."""
    refusal = url_refusal(url)
    if refusal is None and address_of(urlsplit(url).hostname or "") is None:
        host = urlsplit(url).hostname or ""
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            infos = []
        for info in infos:
            address = address_of(str(info[4][0]))
            refusal = address_refusal(host, address) if address is not None else None
            if refusal:
                break
    if refusal:
        raise EgressRefused(refusal)


def refusal_in(exc: BaseException) -> EgressRefused | None:
    """The policy's refusal somewhere in an exception's chain (the SDK wraps the transport's errors)."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, EgressRefused):
            return current
        stack.extend((current.__cause__, current.__context__, getattr(current, "os_error", None)))
    return None
