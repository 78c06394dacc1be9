#!/usr/bin/env python
"""Throughput of PII redaction (recipe.md §1 stage 6) on real code, and what it redacts there.

Input: the files of an installed site-packages (default: this interpreter's) matching --pattern,
read up to --max-mb; real code with no planted secrets. One core. Lines: each detector alone
(emails, IP addresses, keys and passwords), the whole step (``PiiRedactor.process``), and the
reference in the same run: detect-secrets' own per-line loop (``scan_file``'s
``_process_line_based_plugins``, every plugin on every line), on the first --reference-mb MB only
because it is slow. Then the redactions per kind and per 10,000 lines: emails there are real
(authors); keys, passwords and IP addresses are false positives (goal: < 1 per 10,000 lines).

    python benchmarks/bench_pii.py --max-mb 20
    python benchmarks/bench_pii.py --pattern '*.js' --max-mb 5
"""

from __future__ import annotations

import argparse
import copy
import sys
import sysconfig
import time
from collections import Counter
from pathlib import Path

from datatrove.data import Document

from stackcoder.data import fields as F
from stackcoder.data.pii import PII_COUNTS, PiiRedactor
from stackcoder.data.pii.emails import find_emails
from stackcoder.data.pii.ip_addresses import find_ip_addresses
from stackcoder.data.pii.keys import find_keys_and_passwords
from stackcoder.data.pii.secret_scan import InMemoryFile, scan_text


def load_files(root: Path, pattern: str, max_bytes: int) -> list[Document]:
    docs, total = [], 0
    for path in sorted(root.rglob(pattern)):
        if total >= max_bytes or not path.is_file():
            continue
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        rel = path.relative_to(root).as_posix()
        docs.append(Document(text=text, id=rel, metadata={F.PATH: rel, F.LENGTH_BYTES: len(raw)}))
        total += len(raw)
    return docs


def detect_secrets_loop(doc: Document) -> list:
    """The reference: detect-secrets' scan_file steps with its own loop over every line and plugin."""
    from detect_secrets.core import scan
    from detect_secrets.transformers import get_transformed_file

    path = doc.metadata[F.PATH]
    if scan._is_filtered_out(required_filter_parameters=["filename"], filename=path):
        return []
    file = InMemoryFile(doc.text, path)
    lines = get_transformed_file(file) or file.readlines()
    found = list(scan._process_line_based_plugins(list(enumerate(lines, start=1)), path))
    if not found and (eager := get_transformed_file(file, use_eager_transformers=True)):
        found = list(scan._process_line_based_plugins(list(enumerate(eager, start=1)), path))
    return found


def timed(fn, docs: list[Document]) -> float:
    start = time.perf_counter()
    for doc in docs:
        fn(doc)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(sysconfig.get_paths()["purelib"]))
    parser.add_argument("--pattern", default="*.py")
    parser.add_argument("--max-mb", type=float, default=20.0)
    parser.add_argument("--reference-mb", type=float, default=2.0)
    args = parser.parse_args()

    docs = load_files(args.root, args.pattern, int(args.max_mb * 1e6))
    if not docs:
        print(f"no {args.pattern} files under {args.root}", file=sys.stderr)
        return 1
    n_bytes = sum(d.metadata[F.LENGTH_BYTES] for d in docs)
    n_lines = sum(d.text.count("\n") + 1 for d in docs)
    print(f"{len(docs)} files, {n_bytes / 1e6:.1f} MB, {n_lines:,} lines from {args.root} ({args.pattern})")
    scan_text("x = 1\n", "warm.py")  # first-call costs (plugin loading) are not throughput

    def line(name: str, seconds: float, size: int = n_bytes) -> None:
        print(f"{name:<34} {size / 1e6 / seconds:>8.2f} MB/s")

    line("emails", timed(lambda d: find_emails(d.text), docs))
    line("ip addresses", timed(lambda d: find_ip_addresses(d.text, 0), docs))
    line("keys and passwords", timed(lambda d: find_keys_and_passwords(d.text, d.metadata[F.PATH]), docs))
    copies = copy.deepcopy(docs)
    line("PiiRedactor (the step)", timed(PiiRedactor().process, copies))

    sample, size = [], 0
    for doc in docs:
        if size >= args.reference_mb * 1e6:
            break
        sample.append(doc)
        size += doc.metadata[F.LENGTH_BYTES]
    line(
        "detect-secrets, triggered (ours)",
        timed(lambda d: scan_text(d.text, d.metadata[F.PATH]), sample),
        size,
    )
    line("ref: detect-secrets' own loop", timed(detect_secrets_loop, sample), size)

    counts = Counter()
    for doc in copies:
        counts.update(doc.metadata.get(PII_COUNTS, {}))
    print(
        "redactions:",
        ", ".join(f"{k} {v} ({v / n_lines * 1e4:.2f} per 10k lines)" for k, v in counts.items()),
    )
    false_positives = sum(counts[k] for k in ("key", "password", "ip_address"))
    print(f"keys + passwords + IP addresses: {false_positives / n_lines * 1e4:.2f} per 10,000 lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
