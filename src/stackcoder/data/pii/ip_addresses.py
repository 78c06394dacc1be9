"""IP addresses -> a private address of the same family (recipe.md §1 stage 6).

"IP addresses are replaced by a random private address of the same family (there is no IP token).
Not masked: well-known DNS resolvers (8.8.8.8, 1.1.1.1, …), private ranges." Detection follows BigCode
(bigcode-dataset: pii/utils/emails_ip_addresses_detection.py for the patterns and the version filter,
pii/ner/pii_redaction/utils.py for the resolvers and the private-range rule), with every candidate
validated by the ``ipaddress`` module. An address is replaced only when it is globally routable
unicast: private, loopback, link-local, unspecified, shared (100.64/10), documentation
(192.0.2/24, 2001:db8::/32, ...), reserved and multicast addresses are kept.

Kept as well, for false positives in real code:
- a dotted quad with single-digit parts (``1.2.3.4``) is a version or a placeholder (BigCode's
  ``filter_versions`` made an exception when "dns" or "server" is near; we do not: ``1.2.3.4``
  next to the word "server" is still the textbook placeholder);
- a dotted quad followed by ``-`` and a word (``5.10.102.1-microsoft``), after "version" or
  "release" on its line, right after ``ver``/``pkgver=``/``v``/``==``/``>=``, after
  "section"/"§"/"chapter" (``section 13.2.3.1``), opening a comment line before words
  (``// 7.18.1.1 Exact-width integer types``), or on a line naming an object identifier
  (``ObjectIdentifier("2.5.29.14")``: ASN.1 OIDs look like addresses);
- IPv6 outside 2000::/3, the only space allocated for global unicast (``col=4::2:4`` is not an
  address), with fewer than three groups (``x[1000::2]`` is a slice), or starting with ``::``
  (IPv4-mapped and -compatible forms: the dotted IPv4 inside is handled as IPv4).

The replacement is drawn from ``seed`` and the normalised original address (keyed BLAKE2b), so the
same address maps to the same replacement in every file, every task and every run, and code that
compares or reuses an address stays consistent: IPv4 -> 10.0.0.0/8, IPv6 -> fd00::/8 (unique local).
The seed acts as a key: knowing it narrows an IPv4 replacement to ~256 originals (docs/pii.md).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re

from stackcoder.data.pii.spans import IP_ADDRESS, Span

# Well-known public DNS resolvers, kept as they are: BigCode's POPULAR_DNS_SERVERS
# (bigcode-dataset: pii/ner/pii_redaction/utils.py) and the IPv6 addresses their operators publish
# (Google Public DNS, Cloudflare 1.1.1.1, Quad9, OpenDNS, AdGuard DNS).
DNS_RESOLVERS = frozenset(
    [
        "8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1", "76.76.19.19", "76.223.122.150", "9.9.9.9",
        "149.112.112.112", "208.67.222.222", "208.67.220.220", "8.26.56.26", "8.20.247.20",
        "94.140.14.14", "94.140.15.15",
        "2001:4860:4860::8888", "2001:4860:4860::8844",  # Google
        "2606:4700:4700::1111", "2606:4700:4700::1001",  # Cloudflare
        "2620:fe::fe", "2620:fe::9",  # Quad9
        "2620:119:35::35", "2620:119:53::53",  # OpenDNS
        "2a10:50c0::ad1:ff", "2a10:50c0::ad2:ff",  # AdGuard
    ]
)  # fmt: skip

GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")  # IANA: all of the global unicast allocations

_V4 = r"\d{1,3}(?:\.\d{1,3}){3}"
_H = r"[0-9a-fA-F]{1,4}"
# BigCode's ipv6_pattern: full, compressed, link-local with zone, and IPv4-mapped/embedded forms
_V6 = (
    rf"(?:{_H}:){{7}}{_H}|(?:{_H}:){{1,7}}:|(?:{_H}:){{1,6}}:{_H}|(?:{_H}:){{1,5}}(?::{_H}){{1,2}}"
    rf"|(?:{_H}:){{1,4}}(?::{_H}){{1,3}}|(?:{_H}:){{1,3}}(?::{_H}){{1,4}}|(?:{_H}:){{1,2}}(?::{_H}){{1,5}}"
    rf"|{_H}:(?::{_H}){{1,6}}|:(?:(?::{_H}){{1,7}}|:)|fe80:(?::[0-9a-fA-F]{{0,4}}){{0,4}}%[0-9a-zA-Z]+"
    rf"|::(?:ffff(?::0{{1,4}})?:)?{_V4}|(?:{_H}:){{1,4}}:{_V4}"
)
IPV4_PATTERN = re.compile(rf"(?<![\w.]){_V4}(?!\w|\.\d|-\w)")  # "5.10.102.1-microsoft": a version
# IPv6 is matched only where a token holds two colons at most 4 hex digits apart (every form has
# them): a regex that tries the IPv6 alternatives at every hex letter of a file runs at ~8 MB/s
IPV6_PATTERN = re.compile(rf"(?:{_V6})(?![\w:]|\.\d)")
_COLON_PAIR = re.compile(r":[0-9A-Fa-f]{0,4}:")
_MAX_V6_CHARS = 64  # "ffff:...:255.255.255.255" is 45, plus a zone
# a dotted quad right after "version"/"ver"/"v" or a requirement operator is a version number
# "// 7.18.1.1 Exact-width integer types": a section number opening a comment line, then words
_OUTLINE_BEFORE, _OUTLINE_AFTER = re.compile(r"[\s/#*;!%-]*$"), re.compile(r" [A-Za-z]")
# earlier on its line: "version" anywhere; "ver"/"v", a requirement operator or a section word just
# before; an ASN.1 object identifier ("2.5.29.14") anywhere
_NOT_AN_ADDRESS_BEFORE = re.compile(
    r"version|release|\boid|objectidentifier|object_identifier"
    r"|(?:(?<!ser)ver|\bv|section|\bsec|§|chapter|clause)\.?[\s:=\"'(_-]{0,4}$|[=<>~!]=\s*$",
    re.IGNORECASE,
)


def replacement_ip(address: str, seed: int) -> str:
    """The private address that stands for ``address`` (normalised first) under ``seed``."""
    ip = ipaddress.ip_address(address.split("%")[0])
    digest = hashlib.blake2b(str(ip).encode(), digest_size=16, key=str(seed).encode()).digest()
    if ip.version == 4:
        return f"10.{digest[0]}.{digest[1]}.{1 + digest[2] % 254}"  # no .0 / .255 host part
    return str(ipaddress.IPv6Address(b"\xfd" + digest[:15]))


def _is_version(text: str, start: int, end: int, value: str) -> bool:
    if len(value) == 7:  # x.x.x.x: a version or a placeholder (1.2.3.4)
        return True
    line_start = text.rfind("\n", 0, start) + 1
    if _OUTLINE_BEFORE.match(text, line_start, start) and _OUTLINE_AFTER.match(text, end):
        return True
    return bool(_NOT_AN_ADDRESS_BEFORE.search(text, line_start, start))


def _ipv6_candidates(text: str) -> list[re.Match]:
    """IPv6 matches that start a token (nothing of ``[\\w.:]`` before them, as BigCode's boundary)."""

    def in_token(i: int) -> bool:
        return i >= 0 and (text[i].isalnum() or text[i] in "_.:")

    found, last_start = [], -1
    for pair in _COLON_PAIR.finditer(text):
        start = pair.start()
        while in_token(start - 1) and pair.start() - start < _MAX_V6_CHARS:
            start -= 1
        if start == last_start or in_token(start - 1):
            continue
        last_start = start
        m = IPV6_PATTERN.match(text, start)
        if m and m.end() > pair.start():
            found.append(m)
    return found


def find_ip_addresses(text: str, seed: int) -> list[Span]:
    spans = []
    v4 = [m for m in IPV4_PATTERN.finditer(text) if not _is_version(text, m.start(), m.end(), m.group())]
    for m in (*v4, *_ipv6_candidates(text)):
        value = m.group()
        if not any(c.isdigit() for c in value):
            continue  # "::", "dead:beef::cafe": BigCode's ip_has_digit
        if ":" in value and (value.startswith("::") or sum(1 for g in value.split(":") if g) < 3):
            continue  # "::ffff:1.2.3.4" is left to its IPv4 part; "x[1000::2]" is a slice
        try:
            ip = ipaddress.ip_address(value.split("%")[0])
        except ValueError:
            continue
        if not ip.is_global or ip.is_multicast or str(ip) in DNS_RESOLVERS:
            continue
        if ip.version == 6 and ip not in GLOBAL_UNICAST_V6:
            continue  # "col=4::2:4": outside the only IPv6 space allocated to hosts
        spans.append(Span(m.start(), m.end(), IP_ADDRESS, replacement_ip(value, seed)))
    return spans
