"""PII redaction (recipe.md §1 stage 6): one module per detector, the step in redactor.py.

emails.py (``<EMAIL>``), ip_addresses.py (a private address of the same family), keys.py
(detect-secrets plus regexes: ``<KEY>``, ``<PASSWORD>``), names.py (an optional NER model: ``<NAME>``);
spans.py resolves overlaps and rewrites the text. See docs/pii.md.
"""

from stackcoder.data.pii.redactor import PII_COUNTS, PiiRedactor, redact

__all__ = ["PII_COUNTS", "PiiRedactor", "redact"]
