"""One rule for a verb's output folder: resume, refuse or replace (``build``, ``tokenize``,
``index build``, ``train``, ``finetune``).

A verb records the settings that decide its output in a file inside the folder (``build.json``,
``logs/settings.json``, ``config.json``). When it runs again on the same folder:

- **same settings**: it resumes (datatrove skips the tasks that finished, the trainer loads its
  newest checkpoint), with or without ``--overwrite``;
- **a finished output** of a verb that says what "finished" means (``tokens.json``,
  ``index.json``): refused, since there is nothing to resume; ``--overwrite`` replaces it;
- **other settings**: refused, naming the settings that differ; ``--overwrite`` replaces it;
- **a folder that is not empty and holds no record**: refused (it is someone else's);
  ``--overwrite`` replaces it. A verb may say that other files may share its folder (``train``).

Replacing removes what the verb writes (its ``parts``; by default everything but ``keep``), and
never while Slurm jobs of the folder are queued. Then the record is written, so a run cut short
before its first task still resumes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackcoder.errors import UserError


def json_record(indent: int = 2, sort_keys: bool = False) -> Callable[[dict[str, Any]], str]:
    """How a settings record is written: JSON and a final newline."""
    return lambda settings: json.dumps(settings, indent=indent, sort_keys=sort_keys) + "\n"


@dataclass(frozen=True)
class OutputRule:
    """What one verb's output folder looks like to ``prepare_output``."""

    what: str  # the output, in messages: "build", "tokenization"
    record: str  # the settings file, relative to the folder
    dump: Callable[[dict[str, Any]], str]  # the record's bytes (each verb keeps its own format)
    finished: str | None = None  # a file present only once the output is complete
    parts: tuple[str, ...] | None = None  # what replacing removes; None: everything but ``keep``
    keep: tuple[str, ...] = ()  # never removed, and not counted as someone else's files
    ignore: tuple[str, ...] = ()  # record keys not compared (train: the stackcoder version)
    shared: bool = False  # other files may share the folder: no record is not a refusal
    queued_logs: str | None = "logs"  # datatrove's logs: Slurm jobs that must not be running
    flag: str = "--output"


def changed_keys(before: dict[str, Any], now: dict[str, Any], ignore: tuple[str, ...] = ()) -> list[str]:
    """The top-level settings that differ (added, removed or changed), sorted."""
    keys = (before.keys() | now.keys()) - set(ignore)
    return sorted(k for k in keys if before.get(k) != now.get(k))


def prepare_output(folder: Path, settings: dict[str, Any], overwrite: bool, rule: OutputRule) -> None:
    """Apply the rule (module docstring) to ``folder`` for a run with ``settings``, then write the
    record. Raises ``UserError`` for a refusal."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{rule.flag} {folder} exists and is not a directory")
    record = folder / rule.record
    a = "an" if rule.what[0] in "aeiou" else "a"
    problem = None
    if rule.finished and (folder / rule.finished).exists():
        problem = f"{folder} holds a finished {rule.what}"
    elif record.is_file():
        changed = changed_keys(json.loads(record.read_text()), settings, rule.ignore)
        if changed:
            problem = f"{folder} holds {a} {rule.what} with other settings ({', '.join(changed)})"
    elif not rule.shared and folder.is_dir() and any(p.name not in rule.keep for p in folder.iterdir()):
        problem = f"{rule.flag} {folder} is not empty and holds no stackcoder {rule.what}"
    if problem:
        if not overwrite:
            raise UserError(f"{problem}; pass --overwrite to replace it, or choose another {rule.flag}")
        _clear(folder, rule)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(rule.dump(settings))


def _clear(folder: Path, rule: OutputRule) -> None:
    if rule.queued_logs:
        from stackcoder.data.slurm import refuse_if_queued

        refuse_if_queued(folder / rule.queued_logs)
    names = rule.parts if rule.parts is not None else [p.name for p in folder.iterdir()]
    for name in names:
        target = folder / name
        if name in rule.keep:
            continue
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
