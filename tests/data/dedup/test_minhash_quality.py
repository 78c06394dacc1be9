"""Near dedup quality (recipe.md §1 stage 5): the pairs our MinHash LSH joins against exact
Jaccard similarity computed by brute force, on real files plus generated near-copies.

The sample: every decodable file of the demo corpus (real code by others, ~2,150 files in
~40 languages) plus, for 400 of them drawn at random, an edited copy at an edit rate drawn from
1%-50% of lines (lines deleted, inserted, a word replaced; half the copies also rename an
identifier everywhere), and for every 4th a copy of that copy (transitive chains). Exact Jaccard
of the 5-shingle sets (the recipe's tokens, computed here from its words, not with our hashing)
for all pairs within a language, by a sparse matrix product. Measured (docs/dedup.md):

- against the recipe computed exactly (every pair with Jaccard >= 0.7, joined into connected
  components): precision and recall of the pairs in the same component;
- against the pairs with Jaccard >= 0.7 themselves: components also join pairs below 0.7 through
  a chain (A~B, B~C), so precision there is lower by design of the recipe, not by estimation;
- the pairs we emit directly (edges).

``benchmarks/bench_dedup.py`` imports these functions to print the same table, with and
without verification of candidate pairs.
"""

from __future__ import annotations

import itertools
import random
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from data.dedup.helpers import recipe, row, run_passes, write_shards
from stackcoder.data import fields as F
from stackcoder.data.dedup.minhash import iter_pairs, pairs_path

THRESHOLD = 0.7
_IDENT = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]{2,}\b")
EDIT_RATES = [0.01, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5]


def demo_files(corpus: Path) -> list[tuple[str, str, str, str]]:
    """(repo, path, language, text) of every file of the demo corpus that part 1 reads and names."""
    from stackcoder.data.language import LanguageDetector
    from stackcoder.data.readers.reader import RepositoryReader
    from stackcoder.data.readers.sources import discover_sources

    sources = discover_sources(
        [str(corpus / "repos")],
        repos_dir=True,
        repo_metadata=str(corpus / "repo_metadata.jsonl"),
        max_archive_bytes=8_000_000_000,
        max_archive_members=2_000_000,
    )
    docs = LanguageDetector().run(RepositoryReader(sources).run())
    return [
        (d.metadata[F.REPO_NAME], d.metadata[F.PATH], d.metadata[F.LANGUAGE], d.text)
        for d in docs
        if not d.metadata.get(F.REMOVED_STAGE) and d.text
    ]


def edit(text: str, rate: float, rnd: random.Random) -> str:
    """A near-copy: each line deleted, followed by a new line, or with one word replaced, each
    with probability rate/3; half the time an identifier is also renamed everywhere."""
    idents = _IDENT.findall(text)
    if idents and rnd.random() < 0.5:
        old = rnd.choice(idents)
        text = re.sub(rf"\b{re.escape(old)}\b", old + "_renamed", text)
    out = []
    for line in text.split("\n"):
        r = rnd.random()
        if r < rate / 3:
            continue
        out.append(line)
        if r < 2 * rate / 3:
            out.append(f"extra_{rnd.randrange(10**6)} = compute({rnd.randrange(100)})")
        elif r < rate:
            words = line.split(" ")
            words[rnd.randrange(len(words))] = f"w{rnd.randrange(10**6)}"
            out[-1] = " ".join(words)
    return "\n".join(out)


def sample(files: list[tuple[str, str, str, str]], seed: int = 0, n_bases: int = 400) -> list[tuple]:
    rnd = random.Random(seed)
    files = [f for f in files if len(f[3]) < 200_000]
    out = list(files)
    for i, (_, path, language, text) in enumerate(rnd.sample(files, min(n_bases, len(files)))):
        copy = edit(text, rnd.choice(EDIT_RATES), rnd)
        out.append((f"copy/{i}", path, language, copy))
        if i % 4 == 0:
            out.append((f"copy2/{i}", path, language, edit(copy, rnd.choice(EDIT_RATES), rnd)))
    return out


def true_pairs(files: list[tuple], threshold: float = THRESHOLD) -> set[tuple[int, int]]:
    """Every pair (i < j) of one language whose 5-shingle sets have Jaccard >= threshold."""
    from scipy import sparse

    rows, cols, vocab = [], [], {}
    sizes = np.zeros(len(files), dtype=np.int64)
    for i, (_, _, _, text) in enumerate(files):
        tokens = [t for t in re.split(r"\W+", text.lower()) if t]
        shingles = {tuple(tokens[k : k + 5]) for k in range(len(tokens) - 4)}
        sizes[i] = len(shingles)
        for s in shingles:
            rows.append(i)
            cols.append(vocab.setdefault(s, len(vocab)))
    x = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(len(files), len(vocab)))
    inter = (x @ x.T).tocoo()
    language = [f[2] for f in files]
    out = set()
    for i, j, n in zip(inter.row.tolist(), inter.col.tolist(), inter.data.tolist(), strict=True):
        if i < j and language[i] == language[j] and n / (sizes[i] + sizes[j] - n) >= threshold:
            out.add((i, j))
    return out


def components(n: int, edges: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """All pairs (i < j) in the same connected component of ``edges``."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in edges:
        parent[find(i)] = find(j)
    groups = defaultdict(list)
    for i in range(n):
        groups[find(i)].append(i)
    return {p for g in groups.values() for p in itertools.combinations(g, 2)}


def our_edges(files: list[tuple], work: Path, verify: bool = True, shards: int = 3) -> set[tuple[int, int]]:
    """The pairs near dedup emits on ``files`` (dealt round-robin over ``shards``), as indices."""
    index = {}
    parts = [[] for _ in range(shards)]
    for i, (repo, path, language, text) in enumerate(files):
        index[(i % shards) << 32 | len(parts[i % shards])] = i
        parts[i % shards].append(row(text, repo, path, language))
    write_shards(work, parts)
    run_passes(work, shards, 4, recipe(exact=False, verify=verify))
    edges = set()
    for bucket in range(4):
        for chunk in iter_pairs(pairs_path(work / "dedup", bucket)):
            for a, b in zip(chunk["a"].tolist(), chunk["b"].tolist(), strict=True):
                edges.add(tuple(sorted((index[a], index[b]))))
    return edges


def precision_recall(found: set, truth: set) -> tuple[float, float]:
    hits = len(found & truth)
    return hits / max(1, len(found)), hits / max(1, len(truth))


def measure(files: list[tuple], work: Path, verify: bool = True) -> dict[str, float]:
    truth = true_pairs(files)
    recipe_exact = components(len(files), truth)
    edges = our_edges(files, work, verify)
    joined = components(len(files), edges)
    p_rec, r_rec = precision_recall(joined, recipe_exact)
    p_pairs, r_pairs = precision_recall(joined, truth)
    p_edges, _ = precision_recall(edges, truth)
    return {
        "files": len(files),
        "true_pairs": len(truth),
        "recipe_component_pairs": len(recipe_exact),
        "our_component_pairs": len(joined),
        "precision_vs_recipe": p_rec,
        "recall_vs_recipe": r_rec,
        "precision_vs_pairs": p_pairs,
        "recall_vs_pairs": r_pairs,
        "edge_precision": p_edges,
        # of the joined pairs below 0.7, the share the exact recipe joins too (chains)
        "false_pairs_joined_by_recipe": len((joined - truth) & recipe_exact) / max(1, len(joined - truth)),
    }


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_precision_and_recall_against_brute_force(demo_corpus, tmp_path, seed):
    pytest.importorskip("scipy", reason="brute-force Jaccard uses scipy.sparse")
    files = sample(demo_files(demo_corpus), seed)
    m = measure(files, tmp_path)
    print(m)
    assert m["true_pairs"] > 400  # the copies, plus the corpus's own near-duplicates
    # the goal (>= 0.95 precision, >= 0.9 recall) against the recipe computed exactly: met
    assert m["precision_vs_recipe"] >= 0.95 and m["recall_vs_recipe"] >= 0.9
    # against the raw pairs >= 0.7, recall meets the goal; precision does not (measured 0.88-0.94 over
    # seeds 0-2): connected components join chains, and most of the pairs below 0.7 that they join
    # the exact recipe joins too
    assert m["recall_vs_pairs"] >= 0.9
    assert m["precision_vs_pairs"] >= 0.85
    assert m["false_pairs_joined_by_recipe"] >= 0.5
    assert m["edge_precision"] >= 0.95
