"""Keys, tokens and passwords -> ``<KEY>`` / ``<PASSWORD>`` (recipe.md §1 stage 6).

Candidates come from detect-secrets (secret_scan.py: its plugins and filters, as ``scan_file`` runs
them) plus regexes for formats detect-secrets 1.5 does not know (patterns as in gitleaks' rules:
Google API keys, GitHub fine-grained tokens, Hugging Face tokens, Stripe test keys, Anthropic keys)
and PEM private key blocks, whose base64 body is replaced (detect-secrets reports only the BEGIN
line). URL credentials are passwords; the keyword plugin's finds are passwords when the line names
one (password, passwd, pwd, contraseña) and keys otherwise (api_key, secret, ...); every other
plugin gives keys.

Then the recipe's rule, "keys only when they look random and are longer than 8 characters". A key
must have more than 8 characters, at least sqrt(length) distinct ones, stand alone (not inside a
longer run of letters and digits such as base64 data), not be a run (``abcdefghijklmnopqrstuvwyz``)
and be gibberish to detect-secrets' own bigram model (the model and limit of its gibberish filter;
BigCode used the same package, bigcode-dataset: pii/utils/keys_detection.py). Hexadecimal, which
that model cannot judge, needs 16+ characters with letters and digits mixed as random hex mixes
them (``123456789A12`` and pi's digits are not keys). Digests, identifiers and encoded data are not
keys (``_is_data``): when the value, its line or its path names one (``sha512-...``, ``h1:...``,
``base64``, ``.cargo-checksum.json``), or, for hex, a word within two lines or on 2% of the file's
lines does (sha/hash/commit/uuid/objectid/git/version/hex: BigCode's ``is_hash`` and
``file_has_hashes``). A line that names a public key holds no secret. Passwords need 6+
characters, no whitespace, and must not name the thing (``"password"``, ``"my_secret_key"``), be a
placeholder (``changeme``, ``hf_...``) or a lower-case multi-word identifier
(``azure-service-principal``).

Only the secret's characters are replaced, so code stays code: ``password = "<PASSWORD>"``. A key
is replaced wherever it occurs in the file (BigCode did the same), a password only on its line.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from collections.abc import Iterator
from typing import Any

from stackcoder.data.pii.secret_scan import InMemoryFile, scan_text, whole_match
from stackcoder.data.pii.spans import KEY, PASSWORD, PLACEHOLDERS, Span

KEYWORD, URL_CREDENTIALS = "Secret Keyword", "Basic Auth Credentials"
_PASSWORD_WORDS = re.compile(r"pass|pwd|contrase", re.IGNORECASE)  # the keyword plugin's password words
GIBBERISH_LIMIT = 3.7  # detect-secrets' default for its gibberish filter

# each starts with its literal prefix, so the regex engine skips to it; the character before is
# checked in code (a leading lookbehind would make the engine try every position)
EXTRA_KEY_PATTERNS = [
    re.compile(p)
    for p in (
        r"AIza[0-9A-Za-z_-]{35}(?![\w-])",  # Google API key
        r"github_pat_[0-9A-Za-z_]{82}(?![\w-])",  # GitHub fine-grained token
        r"hf_[A-Za-z]{34}(?![\w-])",  # Hugging Face
        r"[rs]k_test_[0-9A-Za-z]{24,99}(?![\w-])",  # Stripe test key
        r"sk-ant-(?:api|admin)\d\d-[\w-]{80,100}(?![\w-])",  # Anthropic
    )
]
# the body may be split over string literals ("...\n" + "...") or carry PEM headers (Proc-Type: ...)
PEM_BLOCK = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----(?P<body>[A-Za-z0-9+/=\s\\\"':,;-]{64,16384}?)"
    r"-----END \1-----"
)
_PEM_EDGE = r"(?:\s|\\[nr]|[\"'+,;])*"
_PEM_LEAD, _PEM_TRAIL = re.compile(rf"^{_PEM_EDGE}"), re.compile(rf"{_PEM_EDGE}$")

_HEXDIGITS = frozenset("0123456789abcdefABCDEF")
# near a hex string: a digest or an identifier; on the line of any candidate, or in its path: data
_HEX_ID_WORDS = re.compile(
    r"sha|md5|hash|digest|checksum|blake|crc|commit|revision|\brev\b|integrity|fingerprint|etag"
    r"|uuid|guid|objectid|\boid\b|git|version|build|hex",
    re.IGNORECASE,
)
_DATA_WORDS = re.compile(r"sha\d|md5|hash|digest|checksum|integrity|\bh1:|base64|b64", re.IGNORECASE)
_PUBLIC_KEY = re.compile(r"public[_-]?key", re.IGNORECASE)
_NAMING_WORDS = re.compile(r"pass|pwd|secret|key|token|auth|credential", re.IGNORECASE)
_IDENTIFIER = re.compile(r"[a-z]+(?:[-_.][a-z]+)+")  # "azure-service-principal-oss-release"
_PLACEHOLDERS = frozenset(
    "changeme change_me changeit xxxx xxxxx xxxxxx xxxxxxxx none null nil true false todo fixme "
    "example sample dummy test testing default required optional string undefined empty blank "
    "foo bar baz qux foobar foobarbaz value your something anything redacted hidden masked".split()
)


@functools.cache
def _gibberish() -> Any:
    """detect-secrets' gibberish model (English bigrams, shipped with it), loaded once per process."""
    from detect_secrets.filters import gibberish
    from gibberish_detector import serializer
    from gibberish_detector.detector import Detector

    with open(os.path.join(gibberish.__path__[0], "rfc.model"), encoding="utf-8") as f:
        return Detector(serializer.deserialize(f.read()), GIBBERISH_LIMIT)


def looks_random(value: str) -> bool:
    """The recipe's test for a key: longer than 8 characters and random-looking."""
    if len(value) <= 8 or len(set(value)) < len(value) ** 0.5:  # "SKxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        return False
    steps = sum(abs(ord(a) - ord(b)) == 1 for a, b in itertools.pairwise(value))
    if steps > 0.3 * (len(value) - 1):  # "abcdefghijklmnopqrstuvwyz": ~3% of random pairs are steps
        return False
    hex_value = value.replace("-", "")
    if _HEXDIGITS.issuperset(hex_value):
        letters = sum(c.isalpha() for c in hex_value) / len(hex_value)  # 6/16 in random hex
        return len(hex_value) >= 16 and 0.15 <= letters <= 0.85
    return _gibberish().is_gibberish(value.lower())


def is_password(value: str) -> bool:
    return (
        len(value) >= 6
        and not any(c.isspace() for c in value)
        and not _NAMING_WORDS.search(value)
        and value.lower().strip("_-.") not in _PLACEHOLDERS
        and "..." not in value  # "hf_..."
        and not _IDENTIFIER.fullmatch(value)
        and len(set(value)) > 2  # "xxxxxx"
    )


def _is_token(value: str, line: str) -> bool:
    """Whether ``value`` stands alone somewhere on ``line``, not inside a longer run of letters and
    digits: AWS's ``AKIA[0-9A-Z]{16}`` matches inside base64 data (a font embedded in PIL)."""
    for start in _occurrences(line, value):
        end = start + len(value)
        if not (start and line[start - 1].isalnum()) and not (end < len(line) and line[end].isalnum()):
            return True
    return False


def _is_data(value: str, line: str, nearby: str, text: str, path: str) -> bool:
    """A digest, an identifier or encoded data rather than a key: the value or its line names one
    (``integrity: "sha512-..."``, ``h1:...=``, ``base64_str = '...'``), its path does
    (``.cargo-checksum.json``, ``tests/util/test_hashing.py``), or, for hex, a word within two
    lines or on 2% of the file's lines names one (BigCode's ``is_hash`` and ``file_has_hashes``)."""
    if _DATA_WORDS.search(value) or _DATA_WORDS.search(line) or _DATA_WORDS.search(path):
        return True
    if not _HEXDIGITS.issuperset(value.replace("-", "")):
        return False
    if _HEX_ID_WORDS.search(nearby) or _HEX_ID_WORDS.search(path):
        return True
    return len(_HEX_ID_WORDS.findall(text)) >= 0.02 * (text.count("\n") + 1)


def _occurrences(text: str, value: str, lo: int = 0, hi: int | None = None) -> Iterator[int]:
    start = text.find(value, lo, hi)
    while start >= 0:
        yield start
        start = text.find(value, start + len(value), hi)


def _pem_bodies(text: str) -> Iterator[tuple[int, int]]:
    if "PRIVATE KEY-----" not in text:
        return
    for m in PEM_BLOCK.finditer(text):
        body = m["body"]
        start = m.start("body") + _PEM_LEAD.match(body).end()
        end = m.end("body") - (len(body) - _PEM_TRAIL.search(body).start())
        if end > start:
            yield start, end


def find_keys_and_passwords(text: str, path: str) -> list[Span]:
    spans: list[Span] = []
    lines = InMemoryFile(text, "").readlines()
    starts = list(itertools.accumulate((len(line) for line in lines), initial=0))
    keys: set[str] = set()
    for secret in scan_text(text, path):
        n = min(secret.line_number, len(lines)) - 1
        value = whole_match(secret, lines[n]).removeprefix("AccountKey=")  # Azure's includes its key name
        code = lines[n][: max(0, lines[n].find(value))] or lines[n]  # the keyword, not a comment after
        is_password_kind = secret.type == URL_CREDENTIALS or (
            secret.type == KEYWORD and bool(_PASSWORD_WORDS.search(code))
        )
        if is_password_kind:
            if is_password(value):
                found = _occurrences(text, value, starts[n], starts[n + 1])
                spans.extend(Span(s, s + len(value), PASSWORD, PLACEHOLDERS[PASSWORD]) for s in found)
        elif looks_random(value) and _is_token(value, lines[n]) and not _PUBLIC_KEY.search(lines[n]):
            nearby = text[starts[max(0, n - 2)] : starts[min(len(lines), n + 3)]]
            if not _is_data(value, lines[n], nearby, text, path):
                keys.add(value)
    for pattern in EXTRA_KEY_PATTERNS:
        for m in pattern.finditer(text):
            before = text[m.start() - 1] if m.start() else " "
            if not (before.isalnum() or before in "_-") and looks_random(m.group()):
                keys.add(m.group())
    for value in keys:
        spans.extend(Span(s, s + len(value), KEY, PLACEHOLDERS[KEY]) for s in _occurrences(text, value))
    spans.extend(Span(start, end, KEY, PLACEHOLDERS[KEY]) for start, end in _pem_bodies(text))
    return spans
