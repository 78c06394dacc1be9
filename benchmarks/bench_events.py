#!/usr/bin/env python
"""GitHub issues and pull requests from GHArchive (`stackcoder build --events`, issue 17): MB/s per
core through the whole pass, records in/out per stage with reasons, tokens. Goal: >= 3 MB/s per core.

The stream is synthetic but made of real parts: every event is one of GitHub's own webhook payload
examples (tests/fixtures/gharchive, from @octokit/webhooks-examples) in the Events-API envelope,
with people, numbers and times set per thread; issue and PR texts are paragraphs of the
documentation installed with this environment's Python packages (README/METADATA/rst, real prose
and code snippets written by others); PR contents are real source files of installed packages, in
git repositories (one per package) whose PR branches edit them. Around the issue and PR events, the
other event types GHArchive holds (push, create, watch, delete, fork: ~3 per relevant event, as in a
real hour) are only read and skipped. The dumps are hourly gzip files.

The measured run is the events pass plus both parts' passes (intake, exact and near dedup, PII,
decontamination, malware-skipped, writer) on one core (``--workers 1``): MB/s per core =
uncompressed dump bytes / wall seconds. The reference in the same run: reading the same dumps
(gzip + orjson per line) and nothing else.

    python benchmarks/bench_events.py                       # ~2,000 issues, ~600 PRs
    python benchmarks/bench_events.py --issues 500 --prs 150 --json out.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import sys
import sysconfig
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from data.gharchive.helpers import Stream, Thread  # noqa: E402

SITE = Path(sysconfig.get_paths()["purelib"])
PACKAGES = [
    "tqdm", "yaml", "charset_normalizer", "requests", "idna", "platformdirs", "loguru", "attr",
    "tomlkit", "soupsieve", "more_itertools", "markdown_it", "detect_secrets", "httpx", "starlette",
    "uvicorn", "dateutil", "jsonschema", "dill", "fire", "distlib", "bs4", "jupytext", "nbformat",
    "smart_open", "wrapt", "ply", "pycparser", "traitlets", "sortedcontainers",
]  # fmt: skip
START = datetime(2023, 3, 1, 9, 0, tzinfo=UTC)


def text_pool() -> list[str]:
    """Paragraphs (40-3,000 characters) of the installed packages' documentation."""
    docs = sorted([*SITE.rglob("*.md"), *SITE.rglob("*.rst"), *SITE.glob("*.dist-info/METADATA")])
    pool = []
    for path in docs:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        pool += [p.strip() for p in text.split("\n\n") if 40 <= len(p.strip()) <= 3000]
    return pool


def body(rng: random.Random, pool: list[str], paragraphs: tuple[int, int]) -> str:
    return "\n\n".join(rng.choice(pool) for _ in range(rng.randint(*paragraphs)))


def _data(text: bytes) -> bytes:
    return b"data %d\n" % len(text) + text + b"\n"


def make_repo(path: Path, package: str, prs: int, rng: random.Random) -> tuple[str, list[tuple[str, str]]]:
    """A git repository of one package's sources with a main commit and ``prs`` PR branches (one or
    two pushes each, editing 1-3 files), written with ``git fast-import``; (base, [(head1, head2)])."""
    files = {}
    for f in sorted((SITE / package).rglob("*.py")):
        if len(files) < 40 and 500 < f.stat().st_size < 60_000:
            files[str(f.relative_to(SITE / package))] = f.read_text(encoding="utf-8", errors="replace")
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    stream = [
        b"commit refs/heads/main\nmark :1\ncommitter B <b@example.org> 1677657600 +0000\n",
        _data(b"base"),
    ]
    stream += [b"M 100644 inline %s\n" % p.encode() + _data(t.encode()) for p, t in files.items()]
    mark, heads = 1, []
    for n in range(prs):
        parent, shas = 1, []
        edited = dict(files)
        for _push in range(rng.choice((1, 1, 2))):
            mark += 1
            stream += [b"commit refs/pull/%d/head\nmark :%d\n" % (n, mark)]
            stream += [
                b"committer B <b@example.org> 1677657600 +0000\n",
                _data(b"edit"),
                b"from :%d\n" % parent,
            ]
            for p in rng.sample(sorted(files), min(len(files), rng.randint(1, 3))):
                lines = edited[p].split("\n")
                for _ in range(rng.randint(1, 4)):
                    at = rng.randrange(len(lines))
                    op = rng.random()
                    if op < 0.4:
                        lines[at] = lines[at] + "  # reviewed"
                    elif op < 0.7:
                        lines[at:at] = ["    # TODO: handle the empty case", "    pass"]
                    else:
                        del lines[at : at + rng.randint(1, 3)]
                edited[p] = "\n".join(lines)
                stream += [b"M 100644 inline %s\n" % p.encode() + _data(edited[p].encode())]
            shas.append(mark)
            parent = mark
        heads.append(shas)
    marks = path / "marks"
    subprocess.run(
        ["git", "-C", str(path), "fast-import", "--quiet", f"--export-marks={marks}"],
        input=b"".join(stream),
        check=True,
    )
    sha = dict(line.split() for line in marks.read_text().split("\n") if line)
    return sha[":1"], [tuple(sha[f":{m}"] for m in h) for h in heads]


def noise(rng: random.Random, event_id: int, at: str) -> dict:
    """One of the event types GHArchive also holds, in its usual shape and size."""
    login, repo = f"dev{rng.randrange(50_000)}", f"org{rng.randrange(5_000)}/project{rng.randrange(20)}"
    kind = rng.choices(
        ["PushEvent", "CreateEvent", "WatchEvent", "DeleteEvent", "ForkEvent"], [60, 15, 12, 8, 5]
    )[0]
    sha = f"{rng.getrandbits(160):040x}"
    payload: dict = {}
    if kind == "PushEvent":
        commits = [
            {"sha": f"{rng.getrandbits(160):040x}", "author": {"email": f"{login}@users.noreply.github.com",
             "name": login}, "message": rng.choice(("Fix typo", "Update README.md", "Bump version", "WIP")),
             "distinct": True, "url": f"https://api.github.com/repos/{repo}/commits/{sha}"}
            for _ in range(rng.randint(1, 3))
        ]  # fmt: skip
        payload = {"repository_id": rng.randrange(10**9), "push_id": event_id, "size": len(commits),
                   "distinct_size": len(commits), "ref": "refs/heads/main", "head": sha, "before": sha,
                   "commits": commits}  # fmt: skip
    elif kind in ("CreateEvent", "DeleteEvent"):
        payload = {"ref": "feature", "ref_type": "branch", "master_branch": "main", "pusher_type": "user"}
    elif kind == "WatchEvent":
        payload = {"action": "started"}
    else:
        payload = {"forkee": {"id": rng.randrange(10**9), "full_name": f"{login}/project", "private": False}}
    return {"id": str(event_id), "type": kind, "public": True, "created_at": at, "payload": payload,
            "actor": {"id": rng.randrange(10**8), "login": login, "display_login": login, "gravatar_id": "",
                      "url": f"https://api.github.com/users/{login}",
                      "avatar_url": f"https://avatars.githubusercontent.com/u/{event_id % 10**8}?"},
            "repo": {"id": rng.randrange(10**9), "name": repo,
                     "url": f"https://api.github.com/repos/{repo}"}}  # fmt: skip


def make_stream(root: Path, issues: int, prs: int, hours: int, seed: int) -> tuple[list[Path], Path]:
    rng = random.Random(seed)
    pool = text_pool()
    repos = root / "repos"
    repos.mkdir()
    per_repo = max(1, prs // len(PACKAGES))
    s = Stream()
    people = [f"user-{i}" for i in range(3_000)] + ["dependabot[bot]", "codecov-io", "k8s-ci-robot"]
    window = timedelta(hours=hours)

    def start() -> None:
        s.clock = START + timedelta(seconds=rng.randrange(int(window.total_seconds() * 0.8)))

    for n in range(issues):
        t = Thread(f"org{rng.randrange(400)}/project{rng.randrange(5)}", n + 1, rng.choice(people), "", "")
        t.title = rng.choice(pool).split("\n")[0][:80]
        t.body = body(rng, pool, (1, 3))
        start()
        s.issue_event(t, "opened")
        for c in range(rng.choice((0, 1, 1, 2, 3, 5, 8))):
            s.comment(t, rng.choice(people), body(rng, pool, (1, 2)), 10_000_000 + n * 20 + c)
        if rng.random() < 0.5:
            s.issue_event(t, "closed", actor=t.author)
    for k, package in enumerate(PACKAGES):
        base, heads = make_repo(repos / f"{package}.git", package, per_repo, rng)
        subprocess.run(["git", "-C", str(repos / f"{package}.git"), "config", "remote.origin.url",
                        f"https://github.com/org-{k}/{package}.git"], check=True)  # fmt: skip
        for n, shas in enumerate(heads):
            t = Thread(
                f"org-{k}/{package}", 1000 + n, rng.choice(people[:3000]), "", "", base=base, head=shas[0]
            )
            t.title = "Fix " + rng.choice(pool).split("\n")[0][:70]
            t.body = body(rng, pool, (1, 2))
            start()
            s.pr_event(t, "opened")
            reviewer = rng.choice(people[:3000])
            for c in range(rng.randint(0, 3)):
                s.comment(
                    t,
                    rng.choice((reviewer, t.author)),
                    body(rng, pool, (1, 1)),
                    20_000_000 + n * 10 + c,
                    pr=True,
                )
            if len(shas) > 1:
                t.head = shas[1]
                s.pr_event(t, "synchronize")
            state = rng.choice(("approved", "approved", "commented", "changes_requested"))
            s.review(t, reviewer, body(rng, pool, (1, 1)), state, 30_000_000 + k * 1000 + n)
            s.pr_event(t, "closed", actor=reviewer, merged=rng.random() < 0.7)
    events = s.events
    for _ in range(3 * len(events)):  # ~3 other events per issue/PR event, as in a real hour
        at = START + timedelta(seconds=rng.randrange(int(window.total_seconds())))
        events.append(noise(rng, rng.randrange(10**10, 10**11), at.strftime("%Y-%m-%dT%H:%M:%SZ")))
    events.sort(key=lambda e: (e["created_at"], e["id"]))
    by_hour: dict[str, list[dict]] = {}  # threads run past the window: their hours get dumps too
    for e in events:
        by_hour.setdefault(e["created_at"][:13], []).append(e)
    dumps = []
    for hour, chunk in sorted(by_hour.items()):
        path = root / "gharchive" / f"{hour[:10]}-{int(hour[11:])}.json.gz"
        path.parent.mkdir(exist_ok=True)
        with gzip.open(path, "wb", compresslevel=6) as f:
            f.writelines(orjson.dumps(e) + b"\n" for e in chunk)
        dumps.append(path)
    return dumps, repos


def read_only(dumps: list[Path]) -> tuple[int, float]:
    """The reference: gzip + orjson of every line, nothing else."""
    t = time.perf_counter()
    n = 0
    for path in dumps:
        with gzip.open(path, "rb") as f:
            for line in f:
                n += len(line)
                orjson.loads(line)
    return n, time.perf_counter() - t


def count_tokens(folder: Path, tokenizer: str) -> tuple[int, int]:
    import pyarrow.parquet as pq
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(tokenizer)
    texts = [
        t
        for p in sorted(folder.glob("*.parquet"))
        for t in pq.read_table(p, columns=["text"])["text"].to_pylist()
    ]
    return len(texts), sum(len(e.ids) for e in tok.encode_batch(texts)) if texts else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--issues", type=int, default=2000)
    ap.add_argument("--prs", type=int, default=600)
    ap.add_argument("--hours", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer", default=str(ROOT / "tests" / "fixtures" / "model" / "tokenizer.json"))
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    from stackcoder.data.executor import configure_logs, run_steps
    from stackcoder.data.gharchive.passes import events_stats, plan_gharchive
    from stackcoder.data.options import RunOptions
    from stackcoder.data.parts import part_stats
    from stackcoder.data.readers.git import git_repo_name
    from stackcoder.data.recipe import load_recipe

    configure_logs(False)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        dumps, repos = make_stream(root, args.issues, args.prs, args.hours, args.seed)
        made = time.perf_counter() - t
        repositories = {git_repo_name(str(p)): str(p) for p in sorted(repos.iterdir())}
        raw_bytes, read_s = read_only(dumps)
        out = root / "out"
        ev, parts = plan_gharchive(load_recipe(), out, [str(d) for d in dumps], repositories, opt_out=[])
        passes = [ev, *(p for part in parts for p in part.passes)]
        timings = {}
        for p in passes:  # one core: every pass with one worker, timed on its own
            t = time.perf_counter()
            run_steps(p.steps, tasks=p.tasks, logging_dir=out / "logs" / p.name,
                      options=RunOptions(workers=1, progress=False), desc=p.name)  # fmt: skip
            timings[p.name] = round(time.perf_counter() - t, 2)
        from stackcoder.data.executor import merge_stats

        for p in passes:
            merge_stats(out / "logs" / p.name, p.tasks)
        total = sum(timings.values())
        result = {
            "input": {"dumps": len(dumps), "uncompressed_mb": round(raw_bytes / 1e6, 1),
                      "gzip_mb": round(sum(d.stat().st_size for d in dumps) / 1e6, 1),
                      "generated_s": round(made, 1)},
            "events": events_stats(out, ev),
            "seconds": timings,
            "total_s": round(total, 2),
            "mb_per_s_per_core": round(raw_bytes / 1e6 / total, 2),
            "reference_read_only_mb_per_s": round(raw_bytes / 1e6 / read_s, 1),
            "parts": {},
        }  # fmt: skip
        for part in parts:
            stats = part_stats(part)
            records, tokens = count_tokens(out / part.layout.name, args.tokenizer)
            result["parts"][part.layout.name] = {
                "records_seen": stats["totals"]["files_seen"],
                "records_kept": records,
                "tokens": tokens,
                "stages": {
                    s["stage"]: {"in": s["files_in"], "out": s["files_out"], "time_s": s["time_s"],
                                 "removed": {k: v["files"] for k, v in s["removed"].items()}}
                    for s in stats["stages"]
                },
            }  # fmt: skip
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
