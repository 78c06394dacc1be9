"""The exact second pass: a tantivy full-text index over the dataset's files, one shard per build
task, storing each file's content and provenance (repo_name, path, blob_id, language, license_type,
detected_licenses, revision_id).

Two uses. Search: BM25 over content and path, with tantivy's query syntax (phrases in quotes,
``field:value``), filters on language, license, repository and path (globs), and snippets with the
matches highlighted. Provenance: a span the Bloom filter found is confirmed by a phrase query of
its words, then by finding the span's normalised text in each candidate's normalised content, so a
source is only ever reported where the text really is (a chance hit of the filter — text that is not
in the data — is never confirmed, whatever words it shares with the data).

Shards are separate tantivy indexes searched one after the other and merged by score: BM25's
document frequencies are then per shard, as in Elasticsearch's default ``query_then_fetch``.
"""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import tantivy
from license_expression import Licensing

from stackcoder.atomic import replace_dir
from stackcoder.data import fields as F
from stackcoder.errors import UserError
from stackcoder.index.portrait import normalize

# stored and returned with every hit and source; the Stack v2 column names
PROVENANCE = (F.REPO_NAME, F.PATH, F.BLOB_ID, F.LANGUAGE, F.LICENSE_TYPE, F.DETECTED_LICENSES, F.REVISION_ID)
# exact-value fields match case-insensitively (GitHub names, SPDX ids and languages do)
RAW = "raw_lower"
LICENSE_ID = "license_id"
_LICENSING = Licensing()  # parses any SPDX-style expression; ids need not be known to it
SEARCHED = ("content", F.PATH)  # what a query without field: prefixes searches
WRITER_HEAP = 64_000_000  # bytes tantivy buffers before it writes a segment
MAX_TOKEN_BYTES = 40  # tantivy's default analyzer drops longer tokens (RemoveLongFilter)


def _analyzer() -> tantivy.TextAnalyzer:
    return tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.raw()).filter(tantivy.Filter.lowercase()).build()


def schema() -> tantivy.Schema:
    b = tantivy.SchemaBuilder()
    b.add_text_field("content", stored=True)  # default analyzer: alphanumeric words, lower-cased, positions
    b.add_text_field(F.PATH, stored=True)  # words of the path, for the query
    b.add_text_field("path_exact", tokenizer_name=RAW)  # the whole path, for --path globs
    for name in (F.REPO_NAME, F.BLOB_ID, F.LANGUAGE, F.LICENSE_TYPE, F.DETECTED_LICENSES, F.REVISION_ID):
        b.add_text_field(name, stored=True, tokenizer_name=RAW)
    # each license id named in ``detected_licenses`` (an item may be an expression such as
    # ``MIT OR Apache-2.0``), so ``--license mit`` finds dual-licensed files too
    b.add_text_field(LICENSE_ID, tokenizer_name=RAW)
    b.add_unsigned_field("shard_row", stored=True)  # the file's row in its shard, for a stable order
    return b.build()


def _open(path: Path) -> tantivy.Index:
    index = tantivy.Index.open(str(path))
    index.register_tokenizer(RAW, _analyzer())
    return index


class TextShardWriter:
    """Writes a tantivy index at ``path``: built beside it and renamed into place on ``close``, so
    a shard directory is whole or absent."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self.index = tantivy.Index(schema(), path=str(self.tmp))
        self.index.register_tokenizer(RAW, _analyzer())
        self.writer = self.index.writer(heap_size=WRITER_HEAP, num_threads=1)
        self.rows = 0

    def add(self, f: dict) -> None:
        """``f``: ``content`` and the PROVENANCE keys."""
        doc = tantivy.Document()
        doc.add_text("content", f["content"])
        doc.add_text(F.PATH, f[F.PATH])
        doc.add_text("path_exact", f[F.PATH])
        for name in (F.REPO_NAME, F.BLOB_ID, F.LANGUAGE, F.LICENSE_TYPE, F.REVISION_ID):
            doc.add_text(name, str(f.get(name) or ""))
        for item in f.get(F.DETECTED_LICENSES) or []:
            doc.add_text(F.DETECTED_LICENSES, item)
        for license_id in license_ids(f.get(F.DETECTED_LICENSES) or []):
            doc.add_text(LICENSE_ID, license_id)
        doc.add_unsigned("shard_row", self.rows)
        self.writer.add_document(doc)
        self.rows += 1

    def close(self) -> int:
        self.writer.commit()
        self.writer.wait_merging_threads()
        del self.writer, self.index
        replace_dir(self.tmp, self.path)
        return self.rows


def license_ids(items: Iterable[str]) -> list[str]:
    """The license ids (and exception ids) named in ``detected_licenses`` items, each an SPDX id or
    expression, in order of first appearance."""
    out: dict[str, None] = {}
    for item in items:
        out.update(dict.fromkeys(_LICENSING.license_keys(item)))
    return list(out)


def glob_regex(glob: str) -> str:
    """A tantivy (Rust) regex for an fnmatch glob, matched against the whole lower-cased value."""
    out = []
    for c in glob.lower():
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
    return "".join(out)


def _record(doc: tantivy.Document) -> dict:
    d = doc.to_dict()
    rec = {k: (d.get(k) or [""])[0] for k in PROVENANCE if k != F.DETECTED_LICENSES}
    rec[F.DETECTED_LICENSES] = d.get(F.DETECTED_LICENSES, [])
    return rec


def _char_ranges(text: str, byte_ranges: Iterable) -> list[list[int]]:
    """tantivy's highlight ranges are UTF-8 byte offsets; callers index strings by character."""
    raw = text.encode("utf-8")
    return [
        [len(raw[: r.start].decode("utf-8", "ignore")), len(raw[: r.end].decode("utf-8", "ignore"))]
        for r in byte_ranges
    ]


@dataclass
class Filters:
    language: str | None = None  # exact, case-insensitive ("python")
    license: str | None = None  # a license class (permissive, no_license, …) or an SPDX id (mit, apache-2.0)
    repo: str | None = None  # owner/name, globs allowed ("acme/*")
    path: str | None = None  # a glob over the whole path ("*.py", "src/*")

    def queries(self, s: tantivy.Schema) -> list[tantivy.Query]:
        out = []
        if self.language:
            out.append(tantivy.Query.term_query(s, F.LANGUAGE, self.language.lower()))
        if self.license:
            value = self.license.lower()
            out.append(
                tantivy.Query.boolean_query(
                    [
                        (tantivy.Occur.Should, tantivy.Query.term_query(s, F.LICENSE_TYPE, value)),
                        (tantivy.Occur.Should, tantivy.Query.term_query(s, LICENSE_ID, value)),
                    ]
                )
            )
        for name, value in ((F.REPO_NAME, self.repo), ("path_exact", self.path)):
            if value:
                out.append(tantivy.Query.regex_query(s, name, glob_regex(value)))
        return out


@dataclass
class Hit:
    score: float
    source: dict
    snippet: str  # a fragment of the content around the matches
    highlights: list[list[int]] = field(default_factory=list)  # [start, end) character ranges in snippet
    snippet_html: str = ""  # the same, HTML-escaped, matches in <b>


_WORD = re.compile(r"[^\W_]+")  # tantivy's SimpleTokenizer: runs of alphanumeric characters


def phrase_words(text: str, most: int = 32) -> list[str]:
    """The words of ``text`` a phrase query can demand: its first and last words may be cut (a span
    starts and ends anywhere), words tantivy does not index are split on, and the longest run left,
    at most ``most`` words from its middle, is used."""
    words = [w.lower() for w in _WORD.findall(text)][1:-1]
    runs, run = [], []
    for w in words:
        if len(w.encode()) > MAX_TOKEN_BYTES:
            runs.append(run)
            run = []
        else:
            run.append(w)
    runs.append(run)
    best = max(runs, key=len)
    if len(best) > most:
        cut = (len(best) - most) // 2
        best = best[cut : cut + most]
    return best


class TextIndex:
    """The tantivy shards under a directory (``NNNNN/``), searched together."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        dirs = (
            sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.endswith(".tmp"))
            if self.root.is_dir()
            else []
        )
        if not dirs:
            raise UserError(f"{self.root}: no full-text shards (build the index first)")
        self.names = [d.name for d in dirs]
        self.indexes = [_open(d) for d in dirs]
        self.schema = self.indexes[0].schema

    def reload(self) -> None:
        for index in self.indexes:
            index.reload()

    @property
    def num_docs(self) -> int:
        return sum(i.searcher().num_docs for i in self.indexes)

    def parse(self, query: str) -> tantivy.Query:
        try:
            return self.indexes[0].parse_query(query, list(SEARCHED))
        except ValueError as e:
            raise UserError(f"cannot parse the query {query!r}: {e}") from None

    def search(
        self,
        query: str,
        filters: Filters | None = None,
        limit: int = 10,
        offset: int = 0,
        snippet_chars: int = 200,
    ) -> tuple[int, list[Hit]]:
        """(how many files match, the hits ranked ``offset`` to ``offset + limit``)."""
        q = self.parse(query) if query.strip() else tantivy.Query.all_query()
        extra = (filters or Filters()).queries(self.schema)
        if extra:
            q = tantivy.Query.boolean_query([(tantivy.Occur.Must, x) for x in [q, *extra]])
        total, ranked = 0, []
        for shard, index in enumerate(self.indexes):
            searcher = index.searcher()
            result = searcher.search(q, limit=offset + limit, count=True)
            total += result.count or 0
            ranked += [(score, shard, addr) for score, addr in result.hits]
        ranked.sort(key=lambda t: -t[0])
        hits = []
        generators: dict[int, tantivy.SnippetGenerator] = {}
        for score, shard, addr in ranked[offset : offset + limit]:
            searcher = self.indexes[shard].searcher()
            if shard not in generators:
                generators[shard] = tantivy.SnippetGenerator.create(searcher, q, self.schema, "content")
                generators[shard].set_max_num_chars(snippet_chars)
            doc = searcher.doc(addr)
            snip = generators[shard].snippet_from_doc(doc)
            fragment = snip.fragment()
            if not fragment:  # matched on the path or a filter only: show the file's start
                content = (doc.to_dict().get("content") or [""])[0]
                fragment = content[:snippet_chars]
            hits.append(
                Hit(
                    score=round(float(score), 4),
                    source=_record(doc),
                    snippet=fragment,
                    highlights=_char_ranges(fragment, snip.highlighted()) if snip.fragment() else [],
                    snippet_html=snip.to_html() if snip.fragment() else html.escape(fragment),
                )
            )
        return total, hits

    def sources(self, span_text: str, limit: int = 10, candidates: int = 100) -> tuple[int, list[dict]]:
        """The files whose normalised content contains ``span_text`` (normalised text, as a portrait
        span carries it): (how many, the first ``limit``)."""
        found: list[dict] = []
        total = 0
        for rec in self._containing(span_text, candidates):
            total += 1
            if len(found) < limit:
                found.append(rec)
        found.sort(key=lambda r: (r[F.REPO_NAME], r[F.PATH]))
        return total, found

    def contains(self, span_text: str, candidates: int = 100) -> bool:
        """Whether any file holds ``span_text``: ``sources`` stopped at the first file found (what
        the membership rule asks of a span too short for its chance probability to settle it)."""
        return next(self._containing(span_text, candidates), None) is not None

    def _containing(self, span_text: str, candidates: int) -> Iterator[dict]:
        """The provenance of each candidate of the span's phrase query whose normalised content
        holds ``span_text``. Normalisation only touches whitespace, so each whitespace-free piece
        of the span is a substring of the raw content too: testing the longest two first drops most
        candidates (files with the words in that order but other punctuation) without normalising
        them, which matters when a query has hundreds of chance hits to rule out."""
        words = phrase_words(span_text)
        if not words:
            return
        q = (
            tantivy.Query.phrase_query(self.schema, "content", words)
            if len(words) > 1
            else tantivy.Query.term_query(self.schema, "content", words[0])
        )
        pieces = sorted(set(span_text.split()), key=len, reverse=True)[:2]
        for index in self.indexes:
            searcher = index.searcher()
            for _, addr in searcher.search(q, limit=candidates, count=False).hits:
                doc = searcher.doc(addr)
                content = (doc.to_dict().get("content") or [""])[0]
                if all(p in content for p in pieces) and span_text in normalize(content):
                    yield _record(doc)

    def documents(self, shard: str) -> Iterator[dict]:
        """Every file of one shard as written (content and provenance), in its original order."""
        index = self.indexes[self.names.index(shard)]
        searcher = index.searcher()
        hits = searcher.search(tantivy.Query.all_query(), limit=max(1, searcher.num_docs), count=False).hits
        rows = []
        for _, addr in hits:
            doc = searcher.doc(addr)
            d = doc.to_dict()
            rows.append(
                ((d.get("shard_row") or [0])[0], {**_record(doc), "content": (d.get("content") or [""])[0]})
            )
        rows.sort(key=lambda t: t[0])
        yield from (r for _, r in rows)
