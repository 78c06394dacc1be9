"""`stackcoder tokenizer train|encode` end to end on a small generated dataset (files/ layout)."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stackcoder.cli import main
from stackcoder.tokenizer.files import load_tokenizer


def run_cli(args, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip()
    return code, err


def _mk(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def dataset(code_files, tmp_path_factory):
    root = tmp_path_factory.mktemp("dataset")
    (root / "files").mkdir()
    items = sorted(code_files.items())
    for shard in range(2):
        part = items[shard::2]
        table = pa.table({"path": [p for p, _ in part], "content": [t for _, t in part]})
        pq.write_table(table, root / "files" / f"{shard:05d}.parquet", compression="zstd")
    return root


@pytest.fixture(scope="module")
def trained_dir(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("tok") / "tokenizer"
    args = ["tokenizer", "train", str(dataset), "--output", str(out), "--vocab-size", "1000"]
    assert main(args + ["--max-bytes", "300K", "--no-progress"]) == 0
    return out


def test_train_writes_a_loadable_tokenizer_and_its_config(trained_dir):
    assert {p.name for p in trained_dir.iterdir()} >= {"tokenizer.json", "tokenizer_config.json"}
    run = json.loads((trained_dir / "train_config.json").read_text())
    assert run["final_vocab_size"] == 1000 and run["columns"] == ["content"]
    assert 290_000 < run["trained_bytes"] <= 300_000
    assert load_tokenizer(trained_dir).get_vocab_size() == 1000


def test_encode_then_decode_through_the_cli(trained_dir, capsys, monkeypatch):
    text = "def f(x):\r\n\treturn x + 42  # 🙂\n<fim_middle>"
    assert main(["tokenizer", "encode", "--tokenizer", str(trained_dir), text]) == 0
    ids = [int(i) for i in capsys.readouterr().out.split()]
    tok = load_tokenizer(trained_dir)
    assert ids == tok.encode(text).ids
    tokens = [tok.id_to_token(i) for i in ids]
    assert tokens[-1] == "<fim_middle>" and "4,2" in ",".join(tokens)  # digits one by one

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(" ".join(map(str, ids)).encode())))
    assert main(["tokenizer", "encode", "-t", str(trained_dir / "tokenizer.json"), "--decode"]) == 0
    assert capsys.readouterr().out == text  # exactly, "\r\n" included, no newline added


def test_encode_reads_stdin_bytes_exactly(trained_dir, capsys, monkeypatch):
    text = "a\r\nb\r\n"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    assert main(["tokenizer", "encode", "-t", str(trained_dir)]) == 0
    ids = [int(i) for i in capsys.readouterr().out.split()]
    assert ids == load_tokenizer(trained_dir).encode(text).ids


def test_tokens_mode_shows_each_token(trained_dir, capsys):
    assert main(["tokenizer", "encode", "-t", str(trained_dir), "--tokens", "x<file_sep>12"]) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [line[1] for line in lines] == ["x", "<file_sep>", "1", "2"]
    assert lines[1] == ["6", "<file_sep>", '"<file_sep>"']


@pytest.mark.parametrize(
    "args, message",
    [
        (["tokenizer", "train", "no/such/dir", "-o", "{tmp}/t"], "no/such/dir: no such file or directory"),
        (["tokenizer", "train", "{empty}", "-o", "{tmp}/t", "--no-progress"], "no training text"),
        (["tokenizer", "train", "{data}", "-o", "{tmp}/t", "--vocab-size", "100"], "at least 294"),
        (["tokenizer", "encode", "-t", "{tmp}/nope", "x"], "no such tokenizer"),
        (["tokenizer", "encode", "-t", "{tok}", "--decode", "1 two 3"], "token ids"),
        (["tokenizer", "encode", "-t", "{tok}", "--decode", "1 999999"], "out of range"),
    ],
)
def test_user_errors_exit_2_with_one_line(args, message, tmp_path, dataset, trained_dir, capsys):
    empty = tmp_path / "empty"
    pq.write_table(pa.table({"content": pa.array([], pa.string())}), _mk(empty / "files") / "00000.parquet")
    fill = {"tmp": str(tmp_path), "empty": str(empty), "data": str(dataset), "tok": str(trained_dir)}
    code, err = run_cli([a.format(**fill) for a in args], capsys)
    assert code == 2
    assert message in err and len(err.splitlines()) == 1 and err.startswith("stackcoder tokenizer: error:")


def test_max_bytes_accepts_units(dataset, tmp_path):
    assert (
        main(
            ["tokenizer", "train", str(dataset), "-o", str(tmp_path), "--vocab-size", "300"]
            + ["--max-bytes", "20kB", "--no-progress"]
        )
        == 0
    )
    assert json.loads((tmp_path / "train_config.json").read_text())["max_bytes"] == 20_000
    with pytest.raises(SystemExit):
        main(["tokenizer", "train", str(dataset), "-o", str(tmp_path), "--max-bytes", "lots"])


def test_cli_defaults_are_the_library_defaults():
    from stackcoder.cli import make_parser
    from stackcoder.tokenizer import files, train_bpe

    args = make_parser().parse_args(["tokenizer", "train", "d", "-o", "o"])
    assert args.vocab_size == train_bpe.VOCAB_SIZE == 49_152
    assert args.min_frequency == train_bpe.MIN_FREQUENCY
    assert args.model_max_length == files.MODEL_MAX_LENGTH
