"""The dataset card on a real small build: YAML header, funnel numbers, recipe, plots, and
``datasets.load_dataset(DIR, config)`` through the card's ``configs``."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from stackcoder.data.build import BuildConfig, build
from stackcoder.data.card import recipe_toml, size_category, write_card
from stackcoder.data.executor import RunOptions
from stackcoder.data.readers.shards import ShardReader
from stackcoder.data.readers.sources import discover_sources
from stackcoder.data.recipe import load_recipe
from stackcoder.data.repo_docs import RepositoryDocuments, summarize_documents

pytest.importorskip("licensedcode", reason="scancode-toolkit is not installed")

REPOS = Path(__file__).parents[1] / "fixtures" / "repos"
EXTRA = {
    "dedup": {
        "exact": {"clusters": 2, "files_removed": 3},
        "near": {"clusters": 1, "files_removed": 1, "largest": [{"survivor": "a/b:x.py", "size": 2}]},
    },
    "pii": {"emails": 4, "keys": 1, "ip_addresses": 2},
}


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    out = tmp_path_factory.mktemp("card") / "out"
    sources = [str(REPOS / "jsonify-0.0.0.tgz"), str(REPOS / "simplegeneric-0.8.1.zip")]
    result = build(BuildConfig(sources=sources, output=out, run=RunOptions(workers=1, progress=False)))
    recipe = load_recipe()
    limits = {k: recipe["ingest"][k] for k in ("max_archive_bytes", "max_archive_members")}
    built_sources = [asdict(s) for s in discover_sources(sources, **limits)]
    extra = EXTRA | {"documents": summarize_documents(out)}
    path = write_card(out, result.stats, recipe, built_sources, extra)
    text = path.read_text()
    _, header, body = text.split("---\n", 2)
    return out, result.stats, recipe, yaml.safe_load(header), body


def test_front_matter_is_a_hub_dataset_card(card):
    datasets = pytest.importorskip("datasets")
    _, stats, _, meta, _ = card
    assert meta["license"] == "other" and meta["license_name"]
    assert meta["task_categories"] == ["text-generation"] and meta["language"] == ["code"]
    sizes = json.loads((Path(datasets.__file__).parent / "utils/resources/size_categories.json").read_text())
    assert meta["size_categories"] == ["n<1K"] and meta["size_categories"][0] in sizes
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert configs["files"]["data_files"] == [{"split": "train", "path": "files/*.parquet"}]
    assert configs["documents"]["data_files"] == [{"split": "train", "path": "documents/*.parquet"}]
    assert configs["files"]["default"] is True
    assert "code" in meta["tags"]


def section(body: str, title: str) -> str:
    return body.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def table_rows(text: str) -> dict[str, list[str]]:
    """The body rows of the markdown tables in ``text``, keyed by their first cell (no backticks)."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if cells and not set(cells[0]) <= {"-"}:
            rows[cells[0].strip("`")] = cells
    return rows


def test_funnel_table_matches_stats(card):
    _, stats, _, _, body = card
    rows = table_rows(section(body, "Funnel"))
    assert len(stats["stages"]) >= 10
    for s in stats["stages"]:
        cells = rows[s["stage"]]
        numbers = [int(c.replace(",", "")) for c in cells[1:5]]
        assert numbers == [s["files_in"], s["files_out"], s["bytes_in"], s["bytes_out"]]
        for reason, count in s["removed"].items():
            assert f"{reason} {count['files']:,} ({count['bytes']:,} B)" in cells[5]
    # the real build removes files for real reasons, and the card shows them
    assert "unknown_language" in rows["language"][5] and "text_filename" in rows["text_names"][5]
    t = stats["totals"]
    assert f"It holds {t['files_kept']:,} files ({t['bytes_kept']:,} bytes)" in body


def test_languages_licenses_and_sources(card):
    _, stats, _, _, body = card
    rows = table_rows(section(body, "Languages"))
    assert len(rows) == len(stats["languages"]) + 1  # and the header
    for language, v in stats["languages"].items():
        assert [int(c.replace(",", "")) for c in rows[language][1:3]] == [v["files"], v["bytes"]]
    rows = table_rows(section(body, "Licenses"))
    for cls, n in stats["license_types"].items():
        assert int(rows[cls][1]) == n
    assert stats["license_types"] == {"no_license": stats["totals"]["files_kept"]}  # both have no license
    assert "2 sources (2 archive) holding 2 repositories" in body
    assert "| jsonify |" in body and "simplegeneric-0.8.1" in body


def test_recipe_is_embedded_as_toml(card):
    _, _, recipe, _, body = card
    block = re.search(r"```toml\n(.*?)```", body, re.S).group(1)
    assert tomllib.loads(block) == recipe


def test_part2_reports_are_rendered(card):
    _, _, _, _, body = card
    dedup = section(body, "Deduplication")
    assert "| exact.clusters | 2 |" in dedup and "| near.files_removed | 1 |" in dedup
    assert "| a/b:x.py | 2 |" in dedup
    pii = section(body, "PII redaction")
    assert "| emails | 4 |" in pii and "| ip_addresses | 2 |" in pii
    assert table_rows(section(body, "Repository documents"))["documents"][1] == "2"


def test_plots_are_valid_pngs(card):
    from PIL import Image

    out, _, _, _, body = card
    for name in ("funnel.png", "languages.png"):
        assert f"]({name})" in body
        with Image.open(out / name) as img:
            assert img.format == "PNG" and img.width > 300 and img.height > 200
            img.load()  # decodes the whole image: a truncated file fails here


def test_configs_load_with_datasets(card, tmp_path):
    datasets = pytest.importorskip("datasets")
    out, stats, _, _, _ = card
    cache = str(tmp_path / "hf")
    files = datasets.load_dataset(str(out), "files", split="train", cache_dir=cache)
    assert files.num_rows == stats["totals"]["files_kept"]
    assert {"blob_id", "repo_name", "path", "content", "license_type"} <= set(files.column_names)
    docs = datasets.load_dataset(str(out), "documents", split="train", cache_dir=cache)
    assert sorted(docs["repo_name"]) == ["jsonify", "simplegeneric-0.8.1"]
    assert all(t.endswith("<|endoftext|>") for t in docs["text"])
    default = datasets.load_dataset(str(out), split="train", cache_dir=cache)
    assert default.num_rows == files.num_rows  # `files` is the default config


def test_missing_stats_are_tolerated(tmp_path):
    card = write_card(tmp_path, {}, load_recipe(), [])
    text = card.read_text()
    assert "No stages recorded." in text and "Not recorded for this build." in text
    assert yaml.safe_load(text.split("---\n")[1])["size_categories"] == ["n<1K"]
    assert (tmp_path / "funnel.png").is_file() and (tmp_path / "languages.png").is_file()


def test_recipe_toml_round_trips_overrides_and_size_categories():
    recipe = load_recipe()
    recipe["filters"]["long_lines"]["markup_languages"] = ['quote " and back\\slash', "tab\tnewline\n", "é"]
    recipe["dedup"]["near"]["threshold"] = 0.85
    assert tomllib.loads(recipe_toml(recipe)) == recipe
    assert [size_category(n) for n in (0, 999, 1000, 12_345, 10**6, 10**13)] == [
        "n<1K",
        "n<1K",
        "1K<n<10K",
        "10K<n<100K",
        "1M<n<10M",
        "n>1T",
    ]


def test_documents_are_identical_with_worker_processes(card, tmp_path):
    """The documents pass on datatrove's local executor, 2 worker processes: the same bytes as the
    in-process run of each rank."""
    from datatrove.executor import LocalPipelineExecutor

    out, stats, _, _, _ = card
    LocalPipelineExecutor(
        pipeline=[ShardReader(str(out / "files")), RepositoryDocuments(str(tmp_path))],
        tasks=stats["tasks"],
        workers=2,
        logging_dir=str(tmp_path / "logs"),
    ).run()
    for rank in range(stats["tasks"]):
        name = f"documents/{rank:05d}.parquet"
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()


def test_considerations_follow_the_recipe(tmp_path):
    recipe = load_recipe()
    assert "<EMAIL>" in write_card(tmp_path / "on", {}, recipe, []).read_text()
    recipe["pii"]["enabled"] = False
    assert "**not** redacted" in write_card(tmp_path / "off", {}, recipe, []).read_text()
