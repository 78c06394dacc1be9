"""`stackcoder eval` end to end: HumanEval's canonical solutions score 1 and empty completions 0
through the sandbox; a local checkpoint and the same checkpoint behind our server give the same
greedy completions; generate-only then --samples; FIM with and without repository context on the
held-out repositories; perplexity falls with training; compare."""

from __future__ import annotations

import json

import pytest

from stackcoder.cli import main
from stackcoder.eval import fim
from stackcoder.eval.problems import humaneval


def write_samples(path, completions: dict[str, str]):
    path.write_text(
        "".join(json.dumps({"task_id": t, "completion": c}) + "\n" for t, c in completions.items())
    )
    return path


def test_canonical_solutions_pass_and_empty_completions_fail(tmp_path, capsys):
    problems = humaneval()[:20]
    good = write_samples(tmp_path / "good.jsonl", {p.task_id: p.canonical for p in problems})
    empty = write_samples(tmp_path / "empty.jsonl", {p.task_id: "" for p in problems})
    for samples, want in ((good, 1.0), (empty, 0.0)):
        out = tmp_path / f"{samples.stem}.json"
        assert (
            main(
                [
                    "eval",
                    "humaneval",
                    "--samples",
                    str(samples),
                    "--output",
                    str(out),
                    "--report",
                    str(tmp_path / "r.md"),
                ]
            )
            == 0
        )
        result = json.loads(out.read_text())
        assert result["scores"] == {"pass@1": want} and len(result["samples"]) == 20
        assert all(s["passed"] == (want == 1.0) for s in result["samples"])
        assert result["sandbox"]["network"] in ("namespace", "blocked-sockets")
    assert (
        "pass@1" in capsys.readouterr().out and "# Evaluation: humaneval" in (tmp_path / "r.md").read_text()
    )
    assert main(["eval", "compare", str(tmp_path / "good.json"), str(tmp_path / "empty.json")]) == 0
    assert "-1.0000" in capsys.readouterr().out


@pytest.mark.slow
def test_all_164_canonical_solutions_pass(tmp_path):
    good = write_samples(tmp_path / "good.jsonl", {p.task_id: p.canonical for p in humaneval()})
    assert (
        main(
            [
                "eval",
                "humaneval",
                "--samples",
                str(good),
                "--output",
                str(tmp_path / "o.json"),
                "--workers",
                "2",
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "o.json").read_text())["scores"]["pass@1"] == 1.0


@pytest.fixture(scope="module")
def server(live_server):
    return live_server[0]


def test_local_model_and_server_agree_and_generate_only_round_trips(serve_checkpoint, server, tmp_path):
    common = ["--limit", "3", "--max-new-tokens", "16"]
    local, remote, openai = tmp_path / "local.json", tmp_path / "remote.json", tmp_path / "openai.json"
    assert main(["eval", "humaneval", "--model", str(serve_checkpoint), *common, "--output", str(local)]) == 0
    assert main(["eval", "humaneval", "--server", server, *common, "--output", str(remote)]) == 0
    assert (
        main(["eval", "humaneval", "--server", server, "--api", "openai", *common, "--output", str(openai)])
        == 0
    )
    completions = [
        [s["completion"] for s in json.loads(p.read_text())["samples"]] for p in (local, remote, openai)
    ]
    assert completions[0] == completions[1] == completions[2]
    assert json.loads(local.read_text())["settings"]["generation_seconds_per_task"] > 0

    samples = tmp_path / "samples.jsonl"
    assert (
        main(
            [
                "eval",
                "humaneval",
                "--model",
                str(serve_checkpoint),
                *common,
                "--generate-only",
                "--output",
                str(samples),
            ]
        )
        == 0
    )
    assert [json.loads(line)["completion"] for line in samples.read_text().splitlines()] == completions[0]
    scored = tmp_path / "scored.json"
    assert main(["eval", "humaneval", "--samples", str(samples), "--output", str(scored)]) == 0
    assert [s["passed"] for s in json.loads(scored.read_text())["samples"]] == [
        s["passed"] for s in json.loads(local.read_text())["samples"]
    ]


def test_errors_are_one_line(tmp_path, serve_checkpoint, capsys):
    assert main(["eval", "fim", "--model", str(serve_checkpoint)]) == 2
    assert "needs --dataset" in capsys.readouterr().err
    assert main(["eval", "humaneval", "--model", str(serve_checkpoint), "--server", "http://x"]) == 2
    assert "exactly one" in capsys.readouterr().err
    assert main(["eval", "mbpp", "--model", str(serve_checkpoint)]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["eval", "humaneval", "--server", "http://127.0.0.1:9", "--limit", "1"]) == 2
    assert "cannot reach" in capsys.readouterr().err
    assert main(["eval", "compare", str(tmp_path / "a.json")]) == 2


@pytest.fixture(scope="module")
def trained(tokens, tmp_path_factory):
    """The debug model trained for 40 steps on the fixture shards, and the same shape untrained."""
    from stackcoder.train.config import apply
    from stackcoder.train.presets import get_preset
    from stackcoder.train.trainer import train

    root = tmp_path_factory.mktemp("eval-models")
    cfg = apply(get_preset("debug"), {"data": {"path": str(tokens)}, "training": {"max_steps": 40}}, "test")
    untrained = train(
        apply(cfg, {"training": {"max_steps": 1}, "optimizer": {"lr": 1e-6, "min_lr": 0.0}}, "t"),
        root / "u",
        progress=False,
    )
    return train(cfg, root / "t", progress=False).model_dir, untrained.model_dir


def test_perplexity_falls_with_training(dataset, trained, tmp_path):
    model, untrained = trained
    ppl = {}
    for name, path in (("trained", model), ("untrained", untrained)):
        out = tmp_path / f"{name}.json"
        assert (
            main(
                ["eval", "perplexity", "--model", str(path), "--dataset", str(dataset), "--output", str(out)]
            )
            == 0
        )
        ppl[name] = json.loads(out.read_text())
    assert ppl["trained"]["scores"]["perplexity"] < 0.75 * ppl["untrained"]["scores"]["perplexity"]
    assert "all" in ppl["trained"]["per_language"] and len(ppl["trained"]["per_language"]) >= 2


def test_fim_with_and_without_repository_context(dataset, trained, tmp_path):
    model, _ = trained
    out = tmp_path / "fim.json"
    assert (
        main(
            [
                "eval",
                "fim",
                "--model",
                str(model),
                "--dataset",
                str(dataset),
                "--fim-examples",
                "6",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    for mode in ("single", "multi"):
        for context in ("no_context", "repo_context"):
            assert 0 <= result["scores"][f"exact_match@{mode}/{context}"] <= 1
        assert f"repo_context_gain@{mode}" in result["scores"]
    spans = {(s["path"], s["mode"], s["middle"]) for s in result["samples"] if s["context"] == "no_context"}
    assert spans == {
        (s["path"], s["mode"], s["middle"]) for s in result["samples"] if s["context"] == "repo_context"
    }


def test_fim_prompts_and_scoring_with_an_oracle(dataset):
    """The scoring, checked with a backend that knows the answers: every span exact, in both modes."""
    examples = fim.examples(str(dataset), per_mode=8)
    assert examples and {e.mode for e in examples} == {"single", "multi"}
    e = next(x for x in examples if x.others)
    with_repo = fim.prompt(e, "repo_context", 10_000)
    assert (
        with_repo.startswith(f"<repo_name>{e.repo}<file_sep>")
        and f"<file_sep><fim_prefix>{e.path}\n" in with_repo
    )
    assert fim.prompt(e, "no_context", 10_000) == f"<fim_prefix>{e.prefix}<fim_suffix>{e.suffix}<fim_middle>"
    from stackcoder.eval.heldout import heldout_files

    files = {(r, f["path"]): f["content"] for r, fs in heldout_files(dataset).items() for f in fs}
    assert all(
        x.prefix + x.middle + x.suffix in files[(x.repo, x.path)] for x in examples
    )  # a contiguous span

    class Oracle:
        name = "oracle"

        def complete(self, prompts, s):  # noqa: ANN001
            answers = {fim.prompt(x, c, 4000): x.middle for x in examples for c in fim.CONTEXTS}
            return [answers[p] + ("\nmore" if s.stop == ["\n"] else "") for p in prompts]

    result = fim.run(str(dataset), Oracle(), per_mode=8)
    assert all(v == 1.0 for k, v in result["scores"].items() if k.startswith("exact_match"))
    assert result["scores"]["repo_context_gain@single"] == 0.0
