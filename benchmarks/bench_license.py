#!/usr/bin/env python
"""License detection throughput (recipe.md §1.2): ScanCode matching in memory vs ScanCode's file API.

Input: a seeded sample of ScanCode's own license texts, each under a copyright line as in a real
LICENSE file. Reported: index load time, scanned files/s and MB/s for ``scan_license_text`` (our
path: ``licensedcode`` detection on the text in memory) and for the reference
``scancode.api.get_licenses`` (what ``scancode --license`` runs, on a temporary file per text), how
often the two agree on the SPDX ids, and the peak RSS.

    python benchmarks/bench_license.py                 # 300 texts, both paths
    python benchmarks/bench_license.py --n 20          # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import tempfile
import time
from pathlib import Path


def sample_texts(n: int, seed: int) -> list[str]:
    import licensedcode

    paths = sorted((Path(licensedcode.__file__).parent / "data" / "licenses").glob("*.LICENSE"))
    texts = []
    for path in paths:
        _, front, text = path.read_text(encoding="utf-8").split("---", 2)
        if text.strip() and "is_deprecated: yes" not in front:
            texts.append(f"Copyright (c) 2019 Example Author\n\n{text.strip()}\n")
    return random.Random(seed).sample(texts, min(n, len(texts)))


def spdx_ids_of_expression(expression: str | None) -> list[str]:
    if not expression:
        return []
    from license_expression import Licensing

    return sorted(Licensing().license_keys(expression))


def bench(name: str, texts: list[str], scan) -> tuple[dict, list[list[str]]]:
    start = time.perf_counter()
    results = [scan(text) for text in texts]
    seconds = time.perf_counter() - start
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    row = {"path": name, "files": len(texts), "seconds": round(seconds, 2)}
    row |= {"files_per_s": round(len(texts) / seconds, 2), "mb_per_s": round(megabytes / seconds, 4)}
    return row, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="texts to scan")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only-memory", action="store_true", help="skip the scancode.api reference")
    args = parser.parse_args()

    from stackcoder.data.license import _scancode, scan_license_text

    texts = sample_texts(args.n, args.seed)
    start = time.perf_counter()
    _scancode()
    report = {"index_load_s": round(time.perf_counter() - start, 2)}
    report["rss_after_load_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    for text in texts[:3]:  # warm-up: ScanCode builds some matcher state on first use
        scan_license_text(text)
    row, ours = bench("memory (licensedcode detect_licenses)", texts, scan_license_text)
    report["runs"] = [row]
    # what LicenseDetector does with a LICENSE file: exact matching, alignment only when it finds none
    from stackcoder.data.license import LicenseDetector

    step = LicenseDetector()
    row, stepped = bench("memory, exact first (LicenseDetector)", texts, lambda t: step._scan_text(t, False))
    report["runs"].append(row)
    report["step_same_ids"] = f"{sum(a == b for a, b in zip(ours, stepped, strict=True))}/{len(texts)}"

    if not args.only_memory:
        from scancode.api import get_licenses

        def scan_file(text: str) -> list[str]:
            fd, path = tempfile.mkstemp(suffix=".txt")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                return spdx_ids_of_expression(get_licenses(path)["detected_license_expression_spdx"])
            finally:
                os.unlink(path)

        row, theirs = bench("file (scancode.api.get_licenses)", texts, scan_file)
        report["runs"].append(row)
        from stackcoder.data.license import license_ids

        # ours are expressions, one per detection; theirs is one combined expression: compare the ids
        ids = [sorted({i for e in found for i in license_ids(e)}) for found in ours]
        same = sum(a == list(b) for a, b in zip(ids, theirs, strict=True))
        report["same_ids"] = f"{same}/{len(texts)}"

    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
