"""Bytes to text as The Stack v2 did it (recipe.md §1): blobs with a NUL byte are dropped, the rest
is decoded as UTF-8, else with a charset detector; what neither decodes is dropped.

The original's detector is not named; we use charset-normalizer (pure Python, MIT). Its codec names
are mapped to the IANA-style names found in The Stack v2's ``src_encoding`` column.
"""

from __future__ import annotations

import re

BINARY = "binary"
UNDECODABLE = "undecodable"

# charset-normalizer returns Python codec names; the dataset spells them the IANA way
_IANA = {
    "ascii": "ASCII",
    "utf_8": "UTF-8",
    "latin_1": "ISO-8859-1",
    "big5": "Big5",
    "shift_jis": "Shift_JIS",
    "cp932": "Shift_JIS",
    "euc_jp": "EUC-JP",
    "euc_kr": "EUC-KR",
    "gb2312": "GB2312",
    "gbk": "GBK",
    "gb18030": "GB18030",
    "koi8_r": "KOI8-R",
    "koi8_u": "KOI8-U",
}


def iana_name(codec: str) -> str:
    """``cp1252`` -> ``windows-1252``, ``iso8859_2`` -> ``ISO-8859-2``, ``latin_1`` -> ``ISO-8859-1``."""
    codec = codec.lower()
    if codec in _IANA:
        return _IANA[codec]
    if m := re.fullmatch(r"cp(125\d)", codec):
        return f"windows-{m.group(1)}"
    if m := re.fullmatch(r"iso8859_(\d+)", codec):
        return f"ISO-8859-{m.group(1)}"
    return codec.upper().replace("_", "-")


def decode(data: bytes, charset_detection: bool = True) -> tuple[str, str | None, str | None]:
    """Return ``(text, src_encoding, None)``, or ``("", None, reason)`` for a file to skip."""
    if b"\0" in data:
        return "", None, BINARY
    try:
        return data.decode("utf-8"), "UTF-8", None
    except UnicodeDecodeError:
        pass
    if not charset_detection:
        return "", None, UNDECODABLE
    # imported here: it is only needed for the few files that are not UTF-8
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        return "", None, UNDECODABLE
    return str(best), iana_name(best.encoding), None
