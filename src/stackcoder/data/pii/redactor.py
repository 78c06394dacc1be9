"""The PII redaction step (recipe.md §1 stage 6; recipe.toml ``[pii]``).

Each live file's text is rewritten in place: emails -> ``<EMAIL>``, keys and tokens -> ``<KEY>``,
passwords -> ``<PASSWORD>``, public IP addresses -> a private address of the same family, and with a
name model, full names -> ``<NAME>``. Detectors see the original text; overlapping detections are
resolved once (longest wins) and the text is rewritten in one pass. No file is ever removed.
"""

from __future__ import annotations

from collections import Counter

from datatrove.data import Document

from stackcoder.data import fields as F
from stackcoder.data.pii.emails import find_emails
from stackcoder.data.pii.ip_addresses import find_ip_addresses
from stackcoder.data.pii.keys import find_keys_and_passwords
from stackcoder.data.pii.names import check_name_model, find_names
from stackcoder.data.pii.spans import KINDS, apply_spans, resolve_overlaps
from stackcoder.data.step import FileStep

PII_COUNTS = "pii"  # metadata key: {kind: redactions} for a file with any, absent otherwise


def redact(text: str, path: str = "", seed: int = 0, name_model: str = "") -> tuple[str, Counter]:
    """``text`` with its PII replaced, and the number of replacements per kind (spans.KINDS).

    ``path`` is the file's path in its repository: detect-secrets picks its keyword rules by file
    type and skips lock files and binary extensions by name.
    """
    spans = find_emails(text) + find_ip_addresses(text, seed) + find_keys_and_passwords(text, path)
    if name_model:
        spans += find_names(text, name_model)
    kept = resolve_overlaps(spans)
    return apply_spans(text, kept), Counter(span.kind for span in kept)


class PiiRedactor(FileStep):
    """Redacts PII in ``doc.text``; verdict always None.

    ``length_bytes`` keeps the original size: like The Stack v2's column, it describes the source
    blob (as ``blob_id`` does), not the redacted content. Per file, ``doc.metadata["pii"]`` holds the
    counts per kind when there is any; the step's stats add ``pii_<kind>`` (email, key, password,
    ip_address, name) and ``pii_files`` (files changed).

    ``name_model``: a local directory with a token-classification model ("" = no name redaction);
    checked here, so a missing model fails the build before any task starts.
    """

    name = "🕵 PII redaction"
    stage = "pii"

    def __init__(self, enabled: bool = True, seed: int = 0, name_model: str = ""):
        super().__init__()
        self.enabled = enabled
        self.seed = seed
        self.name_model = str(check_name_model(name_model)) if enabled and name_model else ""

    def process(self, doc: Document) -> None:
        if not self.enabled:
            return None
        text, counts = redact(doc.text, doc.metadata.get(F.PATH) or "", self.seed, self.name_model)
        if counts:
            doc.text = text
            doc.metadata[PII_COUNTS] = {kind: counts[kind] for kind in KINDS if counts[kind]}
            self.stat_update("pii_files")
            for kind, n in doc.metadata[PII_COUNTS].items():
                self.stat_update(f"pii_{kind}", value=n)
        return None
