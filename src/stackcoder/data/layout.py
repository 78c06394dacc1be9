"""Where a built dataset keeps its parts: the one place that names the folders and files
``stackcoder build`` writes (recipe.md §1-2 and §6, docs/sources.md), read by ``tokenize``,
``index build``, the tokenizer's corpus reader and the trainer.

    DIR/build.json             the settings that decide the output (a rerun resumes only when equal)
    DIR/files/*.parquet        kept source files (column ``content``)
    DIR/removed/*.parquet      every removed file with its stage and reason (and removed/<part>/)
    DIR/documents/*.parquet    repository documents (column ``text``), what the model trains on
    DIR/<part>/*.parquet       the other sources (PART_FOLDERS, text/<kind>): records with ``text``
    DIR/work/                  what passes hand on to each other (work/filtered: the filter pass's output)
    DIR/logs/<pass>/           datatrove's logs and merged step stats per pass
    DIR/stats.json, README.md  the funnel and the dataset card (with funnel.png, languages.png)
    DIR/tokens/                `stackcoder tokenize`'s default output (tokens.json, train/, valid/)

Nothing here reads or writes data: it only says where things are, so it is cheap to import.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FILES = "files"
REMOVED = "removed"
DOCUMENTS = "documents"
WORK = "work"
LOGS = "logs"
TOKENS = "tokens"
BUILD_JSON = "build.json"
STATS_JSON = "stats.json"
CARD = "README.md"
FUNNEL_PNG = "funnel.png"
LANGUAGES_PNG = "languages.png"
TOKENS_JSON = "tokens.json"
# the parts a build writes besides the documents (docs/sources.md), in the card's order
PART_FOLDERS = ("jupyter_scripts", "jupyter_structured", "issues", "pull_requests")
TEXT_FOLDER = "text"  # --text inputs: DIR/text/<kind>/
# everything a build writes besides build.json: what `build --overwrite` removes (nothing else in DIR)
BUILD_OUTPUTS = (
    FILES,
    REMOVED,
    DOCUMENTS,
    *PART_FOLDERS,
    TEXT_FOLDER,
    WORK,
    LOGS,
    CARD,
    STATS_JSON,
    FUNNEL_PNG,
    LANGUAGES_PNG,
)


@dataclass(frozen=True)
class DatasetLayout:
    """The parts of the dataset built at ``root`` (see the module docstring)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def files(self) -> Path:
        return self.root / FILES

    @property
    def removed(self) -> Path:
        return self.root / REMOVED

    @property
    def documents(self) -> Path:
        return self.root / DOCUMENTS

    @property
    def work(self) -> Path:
        return self.root / WORK

    @property
    def filtered(self) -> Path:
        """The filter pass's kept files, one shard per task: what dedup and the final pass read."""
        return self.work / "filtered"

    @property
    def tokens(self) -> Path:
        return self.root / TOKENS

    @property
    def manifest(self) -> Path:
        return self.root / BUILD_JSON

    @property
    def stats(self) -> Path:
        return self.root / STATS_JSON

    @property
    def card(self) -> Path:
        return self.root / CARD

    def part(self, name: str) -> Path:
        """A part's kept records: ``documents``, one of PART_FOLDERS, or ``text/<kind>``."""
        return self.root / name

    def record_parts(self) -> list[str]:
        """The folders of training records present: ``documents``, then the other sources' parts in
        the card's order, then ``text/<kind>`` sorted."""
        names = [DOCUMENTS, *PART_FOLDERS]
        text = self.root / TEXT_FOLDER
        if text.is_dir():
            names += sorted(f"{TEXT_FOLDER}/{p.name}" for p in text.iterdir() if p.is_dir())
        return [n for n in names if self.part(n).is_dir()]

    def logs(self, pass_name: str = "") -> Path:
        """``logs/`` or one pass's logging folder."""
        return self.root / LOGS / pass_name if pass_name else self.root / LOGS

    def is_built(self) -> bool:
        """Whether ``root`` looks like a `stackcoder build` output (even one with nothing kept)."""
        return self.files.is_dir() or self.documents.is_dir()

    @staticmethod
    def resolve(path: str | Path, part: str) -> Path:
        """``part``'s folder for a ``path`` that is either a built dataset (``path/part``) or that part
        itself (a folder of Parquet files, a tokenization): ``tokenize``, ``index build``, the corpus
        and ``train --data`` accept both."""
        path = Path(path)
        return path / part if (path / part).is_dir() else path
