"""detect-secrets 1.5 on a file's text in memory, as ``scan_file`` scans a file (recipe.md §1 stage 6).

The Stack v2 used detect-secrets (Yelp). ``scan_file`` runs, in order: the filename filters (lock
files, binary extensions, swagger), the file transformers (INI/YAML values become quoted
assignments; eager config parsing only when the plain pass found nothing), then per line the line
filters, every plugin, and the secret filters. We call that machinery, with detect-secrets' default
settings (filters ``is_likely_id_string``, ``is_sequential_string``, ``is_templated_secret``,
``is_potential_uuid``, ``is_indirect_reference``, allowlist pragmas, ...), on the text in memory: not
``scan_line``, which skips the filters. Changes: the "file exists on disk" filter is off (there is
no file); ``IPPublicDetector`` / ``PrivateKeyDetector`` are off (ip_addresses.py and keys.py handle
IP addresses and whole PEM blocks); and ``is_indirect_reference``, a line filter meant for
``secret = get_secret_key()``, does not hide the known-format tokens of the regex plugins (AWS,
GitHub, Slack, Stripe, URL credentials, ...) on such a line: detect-secrets drops
``client = WebClient(token="xoxb-...")`` whole, BigCode's configuration did not use the filter at all
(bigcode-dataset: pii/utils/keys_detection.py). ``strict_indirect_reference=True`` restores it.

One shortcut, exact by construction: a line goes to a plugin only when the plugin's *trigger*
matches it (``TRIGGERS``: a part of the plugin's own patterns that every match contains, such as
``ghp_`` or a keyword, searched in the whole text at once; for the entropy plugins, a quoted run long
enough to pass the entropy limit, since n characters carry at most log2(n) bits). A line without it
cannot yield a secret from that plugin. The scan runs ~20x faster than detect-secrets' own loop,
and tests/data/test_pii.py checks that both report the same secrets on real files.

Private functions of ``detect_secrets.core.scan`` are used, so the version is pinned.
"""

from __future__ import annotations

import bisect
import functools
import io
import itertools
import math
import re
import string
from collections.abc import Iterator
from typing import Any

SKIPPED_PLUGINS = frozenset({"IPPublicDetector", "PrivateKeyDetector"})
INDIRECT_REFERENCE = "detect_secrets.filters.heuristic.is_indirect_reference"

# What each detect-secrets 1.5 plugin needs in a line to report anything there, as patterns over
# the line lower-cased (ASCII): each is a part of the plugin's own patterns that no match can lack,
# never spans two lines, and starts with a literal where it can (the regex engine then skips
# ahead instead of trying every position). A plugin not listed (a newer release) sees every line.
TRIGGERS = {
    "AWSKeyDetector": r"a3t[a-z0-9]|abia|acca|akia|asia|aws",
    "ArtifactoryDetector": r"akc[a-z0-9]{10}|ap[\da-f][a-z0-9]{8}",
    "AzureStorageKeyDetector": r"accountkey=",
    "BasicAuthDetector": r"://[^\s/@]+:[^\s/@]+@",
    "CloudantDetector": r"cl(?:oudant|ou)?[_-]?(?:api)?(?:key|pw|pass|token)|\.cloudant\.com",
    "DiscordBotTokenDetector": r"[mno][a-z\d_-]{23,25}\.[a-z\d_-]{6}\.",
    "GitHubTokenDetector": r"gh[pousr]_",
    "GitLabTokenDetector": r"glpat-|gldt-|glft-|glsoat-|glrt-|gr1348941|glcbt-|glimt-|glptt-|glagent-|gloas-",
    "IbmCloudIamDetector": r"""(?:key|pwd|pass|token)["'\]]{0,2} *(?:=>|:=|::|=|:| ) *["']?[a-z0-9_-]{44}""",
    "IbmCosHmacDetector": r"secret[-_]?(?:access)?[-_]?key",
    "JwtTokenDetector": r"eyj",
    "MailchimpDetector": r"-us\d",
    "NpmDetector": r"/:_authtoken=",
    "OpenAIDetector": r"t3blbkfj",
    "PypiTokenDetector": r"pypi-ag",
    "SendGridDetector": r"sg\.",
    "SlackDetector": r"xox[aboprs]-|hooks\.slack\.com",
    "SoftlayerDetector": r"softlayer|sl[_-]?(?:api)?[_-]?(?:key|pwd|pass|token)",
    "SquareOAuthDetector": r"sq0csp-",
    "StripeDetector": r"[rs]k_live_",
    "TelegramBotTokenDetector": r":[0-9a-z_-]{35}",
    "TwilioKeyDetector": r"(?:ac|sk)[a-z0-9]{32}",
}  # KeywordDetector and the two entropy plugins: derived from the plugin itself (_trigger)
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


class InMemoryFile(io.StringIO):
    """What detect-secrets' transformers read: a text file object with a ``name``. Lines end at
    ``\\n``, ``\\r\\n`` or ``\\r`` as for a file opened in text mode, but are kept untranslated, so they
    join back to the text and a line number gives an offset."""

    def __init__(self, text: str, name: str):
        super().__init__(text, newline="")
        self.name = name


def _trigger(plugin: Any) -> re.Pattern | None:
    from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin
    from detect_secrets.plugins.keyword import DENYLIST, KeywordDetector

    if isinstance(plugin, HighEntropyStringsPlugin):
        chars = re.escape("".join(sorted(set(plugin.charset.lower()))))
        return re.compile(rf"""['"][{chars}]{{{math.floor(2**plugin.entropy_limit) + 1},}}['"]""")
    if isinstance(plugin, KeywordDetector):
        return re.compile("|".join((*DENYLIST, "contrase")))  # "contraseÑa" lower-cases only in ASCII
    pattern = TRIGGERS.get(type(plugin).__name__)
    return re.compile(pattern) if pattern else None


@functools.cache
def _scanner() -> tuple[Any, list[tuple[Any, re.Pattern | None]], list[Any], list[Any]]:
    """detect-secrets configured once per process (its settings are a process-wide singleton): its
    scan module, [(plugin, trigger)] in its plugin order, and the line filters without and with
    ``is_indirect_reference``."""
    from detect_secrets.core import scan
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.settings import get_filters, get_plugins, get_settings

    settings = get_settings()
    settings.clear()  # the default filters
    classes = get_mapping_from_secret_type_to_class().values()
    settings.configure_plugins([{"name": c.__name__} for c in classes if c.__name__ not in SKIPPED_PLUGINS])
    settings.disable_filters("detect_secrets.filters.common.is_invalid_file")
    get_filters.cache_clear()
    line_filters = scan.get_filters_with_parameter("line")
    return (
        scan,
        [(plugin, _trigger(plugin)) for plugin in get_plugins()],
        [f for f in line_filters if f.path != INDIRECT_REFERENCE],
        [f for f in line_filters if f.path == INDIRECT_REFERENCE],
    )


def _filtered_out(filters: list[Any], **kwargs: Any) -> bool:
    """``scan._is_filtered_out`` over a given list of filters."""
    from detect_secrets.util.inject import call_function_with_arguments

    for filter_fn in filters:
        try:
            if call_function_with_arguments(filter_fn, **kwargs):
                return True
        except TypeError:  # a filter that needs more than a line (as detect-secrets skips it)
            pass
    return False


def _triggered_lines(lines: list[str]) -> dict[int, list[Any]]:
    """Line index -> the plugins whose trigger matches that line, in detect-secrets' plugin order."""
    starts = list(itertools.accumulate((len(line) + 1 for line in lines), initial=0))
    body = "\n".join(lines)
    lower = body.lower()
    if len(lower) != len(body):  # a few non-ASCII letters lower-case to two characters
        lower = body.translate(_ASCII_LOWER)
    found: dict[int, list[Any]] = {}
    for plugin, trigger in _scanner()[1]:
        if trigger is None:
            for n in range(len(lines)):
                found.setdefault(n, []).append(plugin)
            continue
        m = trigger.search(lower)
        while m:
            n = bisect.bisect_right(starts, m.start()) - 1
            found.setdefault(n, []).append(plugin)
            m = trigger.search(lower, starts[n + 1])  # on to the next line
    return found


def _scan_lines(lines: list[str], filename: str, strict_indirect_reference: bool) -> Iterator[Any]:
    """detect-secrets' ``_process_line_based_plugins``, on the (line, plugin) pairs a trigger admits."""
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.util.code_snippet import get_code_snippet

    scan, _, line_filters, indirect_filters = _scanner()
    for n, plugins in sorted(_triggered_lines(lines).items()):
        line = lines[n].rstrip()
        context = get_code_snippet(lines=lines, line_number=n + 1)
        if _filtered_out(line_filters, filename=filename, line=line, context=context):
            continue
        if _filtered_out(indirect_filters, filename=filename, line=line, context=context):
            if strict_indirect_reference:
                continue
            plugins = [p for p in plugins if isinstance(p, RegexBasedDetector)]
        for plugin in plugins:
            for secret in scan._scan_line(
                plugin=plugin, filename=filename, line=line, line_number=n + 1, context=context
            ):
                if not scan._is_filtered_out(
                    ["context"],
                    filename=secret.filename,
                    secret=secret.secret_value,
                    plugin=plugin,
                    line=line,
                    context=context,
                ):
                    yield secret


def scan_text(text: str, filename: str, strict_indirect_reference: bool = False) -> list[Any]:
    """The PotentialSecrets (type, line_number, secret_value) that detect-secrets' ``scan_file``
    reports for a file at ``filename`` (a path: file type and name filters use it) holding ``text``;
    with ``strict_indirect_reference``, exactly those."""
    from detect_secrets.transformers import get_transformed_file

    scan = _scanner()[0]
    if scan._is_filtered_out(["filename"], filename=filename):
        return []
    file = InMemoryFile(text, filename)
    found = list(
        _scan_lines(get_transformed_file(file) or file.readlines(), filename, strict_indirect_reference)
    )
    if not found:  # as scan_file: the eager transformers only when the plain pass found nothing
        eager = get_transformed_file(file, use_eager_transformers=True)
        if eager:
            found = list(_scan_lines(eager, filename, strict_indirect_reference))
    return found


_JWT_TAIL = re.compile(r"[\w.+/=-]*")


def whole_match(secret: Any, line: str) -> str:
    """The secret as a whole. Regex plugins report a capture group when their pattern has one, and
    for some that group is only the prefix (GitHubTokenDetector reports "ghp" for ``ghp_<36
    characters>``): a value of 8 characters or fewer that is the leading group of a longer match on
    its line is widened to the match. JwtTokenDetector's pattern ends lazily and stops before the signature:
    a token is taken to the end of its base64url run."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    value = secret.secret_value or ""
    if secret.type == "JSON Web Token" and (start := line.find(value)) >= 0:
        return value + _JWT_TAIL.match(line, start + len(value)).group()
    if len(value) > 8:
        return value
    for pattern in getattr(get_mapping_from_secret_type_to_class().get(secret.type), "denylist", ()):
        for m in pattern.finditer(line):
            if m.groups() and m.group(1) == value and m.start(1) == m.start() and m.end() > m.end(1):
                return m.group()
    return value
