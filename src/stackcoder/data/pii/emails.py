"""Email addresses -> ``<EMAIL>`` (recipe.md §1 stage 6).

The pattern follows BigCode's (bigcode-dataset: pii/utils/emails_ip_addresses_detection.py,
``email_pattern``, itself from BigScience's PII code): a local part of anything but whitespace and
punctuation delimiters, ``@``, a dotted domain ending in a label that starts with a letter, with a
delimiter or the line's end on both sides. Differences, each for a false positive seen in real code:

- ``=``, brackets, braces, backticks and ``|`` also delimit, so ``email=jane@x.org`` keeps ``email=``;
- a ``(`` right after the domain is a method call (``A@x.reshape(...)``), not an address;
- domain labels are host names (no ``_``: ``asset+block@subs_Intro.srt.sjson`` is an asset key) and
  the top-level domain is letters only (or punycode), so ``pkg@1.2.3`` never matches;
- the user info of a URL (``https://user:secret@host``) is left to keys.py's URL-credential rule;
- skipped: templates (``%s@%s.com``, ``{user}@{host}``), asset names (``icon@2x.png``), git's SSH user
  (``git@github.com:owner/repo``), and the reserved example domains of RFC 2606 / RFC 6761
  (``example.com``, ``*.test``, ``*.invalid``, ``*.localhost``), which are nobody's address.
"""

from __future__ import annotations

import re

from stackcoder.data.pii.spans import EMAIL, PLACEHOLDERS, Span

_DELIMS = r"""\s@,?!;:()'"<>\[\]{}=`|/*\\"""
EMAIL_PATTERN = re.compile(
    rf"""
    (?:^|(?<=[{_DELIMS}.]))                 # start of line or a delimiter before
    (?P<local>[^{_DELIMS}]+)
    @
    (?P<domain>
        (?:[^\W_](?:(?:[^\W_]|-)*[^\W_])?\.)+  # host name labels: letters, digits, inner hyphens
        (?:[^\W\d_]{{2,63}}|xn--[a-z0-9-]+)  # top-level domain: letters or punycode
    )
    (?=$|[{_DELIMS}.]) (?!\()             # end of line or a delimiter after, not a call
    """,
    re.VERBOSE | re.MULTILINE,
)

_TEMPLATE_CHARS = frozenset("%${}<>")
_ASSET_SUFFIXES = frozenset(
    "png jpg jpeg gif svg webp ico bmp pdf js mjs cjs ts css scss html htm json xml yml yaml txt lock".split()
)
_RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
_RESERVED_TLDS = frozenset({"example", "test", "invalid", "localhost"})


def is_real_address(local: str, domain: str) -> bool:
    if _TEMPLATE_CHARS.intersection(local) or local.lower() == "git":
        return False
    domain = domain.lower()
    tld = domain.rsplit(".", 1)[-1]
    if tld in _ASSET_SUFFIXES or tld in _RESERVED_TLDS:
        return False
    return not any(domain == d or domain.endswith("." + d) for d in _RESERVED_DOMAINS)


# a URL's user info (``scheme://user@host``, ``scheme://user:password@host``) is not an address
_URL_USERINFO = re.compile(r"//(?:[^\s/@:]*:)?$")


def find_emails(text: str) -> list[Span]:
    if "@" not in text:
        return []
    return [
        Span(m.start(), m.end(), EMAIL, PLACEHOLDERS[EMAIL])
        for m in EMAIL_PATTERN.finditer(text)
        if is_real_address(m["local"], m["domain"])
        and not _URL_USERINFO.search(text, max(0, m.start() - 256), m.start())
    ]
