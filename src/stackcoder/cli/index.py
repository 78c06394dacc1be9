"""`stackcoder index build|query|search|whois|optout`: was this code in the training data, where
from and under which license; full-text search over a dataset; an owner's repositories in it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from stackcoder.errors import UserError

DEFAULT_MAX_CHANCE = 1e-6  # stackcoder.index.service.DEFAULT_MAX_CHANCE, without importing tantivy for --help
INDEX_HELP = "a directory written by `stackcoder index build`"


def add_parser(sub: argparse._SubParsersAction) -> None:
    from stackcoder.cli.run_flags import add_run_flags
    from stackcoder.index.config import IndexConfig

    p = sub.add_parser(
        "index",
        help="membership test, search and whois over a built dataset (Data Portrait + full-text index)",
        description="Index a built dataset's files, then ask whether text is in it (with where from and "
        "under which license), search it, or list an owner's repositories. docs/index.md explains both "
        "structures.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    b = actions.add_parser(
        "build",
        help="index DATASET/files: Bloom filter shards and a tantivy full-text index",
        description="One pass over DATASET/files/*.parquet on the build's executor, one task per shard: "
        "each writes a Bloom filter of 50-character n-grams (stride 50, recipe.md §5 normalisation) "
        "with its measured false-positive rate, and a tantivy index of the files with their provenance. "
        "OUTPUT/index.json sums them up. A rerun after a kill resumes.",
    )
    b.add_argument("dataset", metavar="DATASET_DIR", help="a directory built by `stackcoder build`")
    b.add_argument("--output", "-o", required=True, metavar="INDEX_DIR", help="where the index goes")
    b.add_argument(
        "--fpr",
        type=float,
        default=IndexConfig.fpr,
        metavar="P",
        help="target false-positive rate per n-gram, index as a whole; default: %(default)s",
    )
    b.add_argument(
        "--capacity",
        type=int,
        metavar="N",
        help="n-grams per shard (fixed filter size); default: each shard sized for what it holds",
    )
    b.add_argument(
        "--shards",
        type=int,
        metavar="S",
        help="index shards (tasks); default: one per GiB of content, at least --workers",
    )
    b.add_argument("--overwrite", action="store_true", help="replace an existing index at OUTPUT")
    add_run_flags(b)
    b.set_defaults(run=run_build)

    q = actions.add_parser(
        "query",
        help="which spans of a text are in the data, with chance probabilities and sources (JSON)",
        description="Test every offset of the text against the Bloom filters; chains of hits are spans. "
        "A span is reported when chance does not explain it: the full-text index confirms its text "
        "(admitted_by: confirmed), or its chain of n-grams makes chance_probability (measured "
        "false-positive rate ** n-grams) at most --max-chance (admitted_by: chain). Lone hits are about "
        "1% of the offsets of any text and are left out; `covered` counts reported spans only. Each span "
        "is printed with start/end (character offsets in the text as given), the chained n-gram count, "
        "chance_probability, and the dataset files that hold it (repo_name, path, blob_id, license_type, "
        "detected_licenses, revision_id). docs/index.md explains the rule.",
    )
    q.add_argument("file", nargs="?", metavar="FILE", help="the text to test (default: standard input)")
    q.add_argument("--index", "-i", required=True, metavar="INDEX_DIR", help=INDEX_HELP)
    q.add_argument(
        "--max-chance",
        type=float,
        default=DEFAULT_MAX_CHANCE,
        metavar="P",
        help="report unconfirmed spans whose chance probability is at most P (about P × characters of "
        "random text pass); 1 reports every hit; default: %(default)s",
    )
    q.add_argument(
        "--all-hits",
        action="store_true",
        help="the raw view: every span the filters find, those chance explains with admitted_by null",
    )
    q.add_argument(
        "--min-ngrams",
        type=int,
        default=1,
        metavar="C",
        help="report chains of at least C n-grams (C=2: spans of 100+ characters); default: %(default)s",
    )
    q.add_argument(
        "--sources",
        type=int,
        default=10,
        metavar="N",
        help="source files listed per span (0: none, and spans a chain admits are not looked up); "
        "default: %(default)s",
    )
    q.add_argument(
        "--confirmed-only",
        action="store_true",
        help="only spans the full-text index confirms (--max-chance 0: no chain admits a span alone)",
    )
    q.set_defaults(run=run_query)

    s = actions.add_parser(
        "search",
        help="BM25 full-text search with phrases and filters; snippets with the matches highlighted",
        description='tantivy query syntax: words, "exact phrases", +required -excluded, field:value '
        "(fields: content, path). Filters narrow to a language, a license (class or SPDX id), repositories "
        "or paths (globs).",
    )
    s.add_argument("query", metavar="QUERY", help="e.g. '\"def __init__\" parser'")
    s.add_argument("--index", "-i", required=True, metavar="INDEX_DIR", help=INDEX_HELP)
    s.add_argument("--language", metavar="LANG", help="e.g. Python")
    s.add_argument("--license", metavar="LICENSE", help="permissive, no_license, or an SPDX id such as MIT")
    s.add_argument("--repo", metavar="GLOB", help="owner/name, globs allowed: 'psf/*'")
    s.add_argument("--path", metavar="GLOB", help="a glob over the whole path: '*.py', 'src/*'")
    s.add_argument(
        "--limit", "-n", type=int, default=10, metavar="N", help="hits shown; default: %(default)s"
    )
    s.add_argument("--offset", type=int, default=0, metavar="K", help="skip the first K hits (paging)")
    s.add_argument("--json", action="store_true", help="print the result as JSON")
    s.set_defaults(run=run_search)

    w = actions.add_parser(
        "whois",
        help="an owner's repositories in the data, with file counts",
        description="List the repositories (and their file counts) of OWNER in an index, or in a built "
        "dataset with --dataset. OWNER takes the opt-out list's syntax: 'octocat', 'octocat/hello-world', "
        "'acme-*': what it lists is what `stackcoder optout add OWNER` would remove.",
    )
    w.add_argument("owner", metavar="OWNER")
    where = w.add_mutually_exclusive_group(required=True)
    where.add_argument("--index", "-i", metavar="INDEX_DIR", help=INDEX_HELP)
    where.add_argument(
        "--dataset", "-d", metavar="DATASET_DIR", help="a directory built by `stackcoder build`"
    )
    w.add_argument("--json", action="store_true", help="print {repository: files} as JSON")
    w.set_defaults(run=run_whois)

    o = actions.add_parser(
        "optout",
        help="remove opted-out repositories from an index (rebuilds the shards that held them)",
        description="Read an opt-out list (`stackcoder optout add` writes one) and rebuild every shard of "
        "the index that holds a matching repository from the files it keeps, so queries and searches no "
        "longer find them. index.json records the list as a count and a digest only.",
    )
    o.add_argument("--index", "-i", required=True, metavar="INDEX_DIR", help=INDEX_HELP)
    o.add_argument(
        "--file", type=Path, metavar="FILE", help="the list (default: $STACKCODER_OPTOUT, else ./optout.txt)"
    )
    o.set_defaults(run=run_optout)


def run_build(args: argparse.Namespace) -> int:
    from stackcoder.cli.run_flags import run_options
    from stackcoder.data.executor import configure_logs
    from stackcoder.index.build import build_index
    from stackcoder.index.config import IndexConfig

    configure_logs()
    s = build_index(
        IndexConfig(
            dataset=args.dataset,
            output=args.output,
            fpr=args.fpr,
            capacity=args.capacity,
            shards=args.shards,
            overwrite=args.overwrite,
            run=run_options(args),
        )
    )
    if s is None:
        print(f"submitted to Slurm; follow it with: stackcoder status {args.output} --wait")
        return 0
    print(
        f"{s['files']:,} files of {s['repositories']:,} repositories in {s['shards']} "
        f"shard{'s' if s['shards'] != 1 else ''}: "
        f"Bloom filters {s['portrait_bytes'] / 1e6:.2f} MB ({100 * s['portrait_share_of_corpus']:.2f}% of "
        f"{s['content_bytes'] / 1e6:.1f} MB), measured false-positive rate "
        f"{s['measured_fpr']['combined']:.4f} (target {s['target_fpr']}); "
        f"full-text index {s['text_index_bytes'] / 1e6:.1f} MB; written to {args.output}"
    )
    return 0


def _read(file: str | None) -> str:
    if file is None or file == "-":
        if sys.stdin.isatty():
            print("reading the text from standard input (end with Ctrl-D)", file=sys.stderr)
        return sys.stdin.read()
    try:
        return Path(file).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{file}: cannot read it as UTF-8 text: {e}") from None


def run_query(args: argparse.Namespace) -> int:
    from stackcoder.index.service import DatasetIndex, min_chain

    if args.min_ngrams < 1 or args.sources < 0:
        raise UserError("--min-ngrams must be at least 1 and --sources at least 0")
    if not 0 <= args.max_chance <= 1:
        raise UserError(f"--max-chance {args.max_chance} is not a probability: give one in [0, 1], e.g. 1e-6")
    index = DatasetIndex(args.index)
    text = _read(args.file)
    # confirmed only: no chain admits a span unconfirmed, so every span goes to the full-text pass
    max_chance = 0.0 if args.confirmed_only else args.max_chance
    spans = index.query(
        text, min_ngrams=args.min_ngrams, sources=args.sources, max_chance=max_chance, all_hits=args.all_hits
    )
    if args.confirmed_only:
        spans = [s for s in spans if s["confirmed"]]
    out = {
        "length": len(text),
        "measured_fpr": round(index.portrait.fpr, 6),
        "max_chance": max_chance,
        "min_chain": min_chain(index.portrait.fpr, max_chance),
        "all_hits": args.all_hits,
        "covered": sum(e - s for s, e in _merged(spans)),
        "spans": spans,
    }
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


def _merged(spans: list[dict]) -> list[list[int]]:
    from stackcoder.index.service import merge_ranges

    return merge_ranges([[s["start"], s["end"]] for s in spans])


def run_search(args: argparse.Namespace) -> int:
    from stackcoder.index.fulltext import Filters
    from stackcoder.index.service import DatasetIndex

    if args.limit < 1 or args.offset < 0:
        raise UserError("--limit must be at least 1 and --offset at least 0")
    filters = Filters(language=args.language, license=args.license, repo=args.repo, path=args.path)
    result = DatasetIndex(args.index).search(args.query, filters, limit=args.limit, offset=args.offset)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    color = sys.stdout.isatty()
    print(f"{result['total']:,} files match")
    for rank, hit in enumerate(result["hits"], args.offset + 1):
        src = hit["source"]
        licenses = ", ".join(src["detected_licenses"]) or src["license_type"]
        where = f"{src['repo_name']}/{src['path']}"
        print(f"\n{rank}. {where}  [{src['language']}; {licenses}]  score {hit['score']}")
        print("   " + _highlight(hit["snippet"], hit["highlights"], color).replace("\n", "\n   "))
    return 0


def _highlight(text: str, ranges: list[list[int]], color: bool) -> str:
    on, off = ("\033[1;31m", "\033[0m") if color else ("«", "»")
    out, at = [], 0
    for s, e in ranges:
        out += [text[at:s], on, text[s:e], off]
        at = e
    return "".join(out) + text[at:]


def run_whois(args: argparse.Namespace) -> int:
    from stackcoder.index.service import DatasetIndex, dataset_whois

    repos = (
        DatasetIndex(args.index).whois(args.owner) if args.index else dataset_whois(args.dataset, args.owner)
    )
    if args.json:
        print(json.dumps(repos, indent=2))
        return 0
    if not repos:
        print(f"no repository of {args.owner} in this data")
        return 0
    width = max(len(r) for r in repos)
    for repo, files in repos.items():
        print(f"{repo:<{width}}  {files:>7,} files")
    print(f"{len(repos)} repositories, {sum(repos.values()):,} files")
    return 0


def run_optout(args: argparse.Namespace) -> int:
    from stackcoder.data.optout import default_file, load_optout
    from stackcoder.index.optout import apply_optout

    path = args.file or default_file()
    if not path.is_file():
        raise UserError(f"no opt-out list at {path} (create one with `stackcoder optout add PATTERN`)")
    r = apply_optout(args.index, load_optout(path))
    print(
        f"{r['repositories_removed']} repositories ({r['files_removed']:,} files) removed; "
        f"{r['shards_rebuilt']} shards rebuilt"
    )
    return 0
