"""A notebook file as StarCoder2's two Jupyter texts (recipe.md §6, "Jupyter – scripts/structured").

- ``parse_notebook``: the file as an nbformat v4 notebook (older formats upgraded with nbformat's own
  converters); a file that does not parse raises ``NotebookError`` with the removal reason.
- ``script_language``: the script's extension from the kernel metadata (``language_info.
  file_extension``, else ``kernelspec.language`` / ``language_info.name``, else the language of an
  nbformat 3 file's code cells), else detected from the code cells.
- ``script_text``: ``<jupyter_script>{script}<|endoftext|>``, the script in jupytext's "light" format.
- ``structured_text``: Python notebooks only, ``<jupyter_start><jupyter_text>{markdown}<jupyter_code>
  {code}<jupyter_output>{output}...<|endoftext|>`` with the recipe's grouping and output truncation.

Choices where the recipe is silent (docs/sources.md): jupytext's YAML header (kernel, jupytext's own
version) is left out of scripts unless ``header``, so a script depends on the notebook alone; raw
cells are neither text nor code; a group's markdown cells are joined by a blank line and its code
cells by a newline; an output is a ``stream`` or the ``text/plain`` of a result or display.
"""

from __future__ import annotations

import ast
import contextlib
import json
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from stackcoder.tokenizer.special_tokens import (
    EMPTY_OUTPUT,
    EOS,
    JUPYTER_CODE,
    JUPYTER_OUTPUT,
    JUPYTER_SCRIPT,
    JUPYTER_START,
    JUPYTER_TEXT,
)

MAX_OUTPUT_CHARS = 1_000  # "cut to its first 1,000 characters + [...]" (recipe.md §6)
TRUNCATED = "[...]"
# IPython lines that are not Python: magics, shell escapes, help (``obj?``); dropped before detection
_IPYTHON_LINE = re.compile(r"^\s*(?:[%!]|.*\?\s*$)")


class NotebookError(ValueError):
    """A notebook that gives no text: ``reason`` is the removal reason, ``detail`` says more."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Language:
    extension: str  # the script's extension, with its dot (".py")
    source: str  # where it came from: language_info, kernelspec, nbformat3_cells, detected


def _jupytext():
    import jupytext  # imported on first use: it pulls in markdown-it and friends

    return jupytext


def _nbformat():
    import nbformat

    return nbformat


@contextlib.contextmanager
def _no_cell_validation() -> Iterator[None]:
    """While jupytext writes a script, nbformat's schema check of each cell it builds is skipped.
    jupytext's light format re-reads every code cell's text into a throwaway cell to decide on
    cell markers, and ``nbformat.v4.new_code_cell`` validates each one against the JSON schema:
    23% of the conversion's CPU on real notebooks, for cells made from a notebook already parsed.
    The scripts are byte-identical with and without it (benchmarks/bench_sources.py corpus)."""
    from nbformat.v4 import nbbase

    validate = nbbase.validate
    nbbase.validate = lambda *args, **kwargs: None
    try:
        yield
    finally:
        nbbase.validate = validate


def parse_notebook(text: str) -> tuple[Any, dict[str, Any]]:
    """The notebook (nbformat v4) and facts about the file (``nbformat``: its original version,
    ``cell_language``: the language an nbformat 3 file gives its code cells)."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise NotebookError("invalid_json", str(e)) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("nbformat"), int):
        raise NotebookError("invalid_notebook", "no nbformat version")
    nbformat = _nbformat()
    major, minor = raw["nbformat"], raw.get("nbformat_minor", 0)
    if major not in nbformat.versions:
        raise NotebookError("unsupported_nbformat", f"nbformat {major}")
    facts: dict[str, Any] = {"nbformat": f"{major}.{minor}"}
    if major == 3:
        cells = [c for ws in raw.get("worksheets") or [] for c in ws.get("cells") or []]
        facts["cell_language"] = next((c.get("language") for c in cells if c.get("language")), None)
    # IPython 1.x wrote nbformat 3 files without metadata; nbformat's upgrade needs the key
    raw.setdefault("metadata", {})
    try:
        nb = nbformat.versions[major].to_notebook_json(raw, minor=minor)
        if major < 4:
            nb = nbformat.convert(nb, 4)
        for cell in nb.cells:
            source = cell.get("source", "")
            cell["source"] = "".join(source) if isinstance(source, list) else str(source)
            if not isinstance(cell.get("cell_type"), str):
                raise ValueError("a cell has no cell_type")
    # nbformat's converters raise what the malformed JSON leads them to (KeyError, AttributeError,
    # jsonschema's ValidationError, ...): each is recorded as the notebook's removal detail
    except Exception as e:
        raise NotebookError("invalid_notebook", f"{type(e).__name__}: {e}") from None
    if not isinstance(nb.get("metadata"), dict):
        raise NotebookError("invalid_notebook", "metadata is not an object")
    return nb, facts


def _extension_of(language: Any) -> str | None:
    """jupytext's script extension for a kernel language name (``python3``, ``R``, ``C++17``)."""
    if not isinstance(language, str) or not language:
        return None
    from jupytext.languages import _SCRIPT_EXTENSIONS, usual_language_name

    name = usual_language_name(language).lower()
    name = {"python3": "python", "python2": "python", "c#": "csharp", "f#": "fsharp"}.get(name, name)
    return next((ext for ext, v in _SCRIPT_EXTENSIONS.items() if v["language"].lower() == name), None)


def looks_like_python(code_cells: list[str]) -> bool:
    """Most code cells parse as Python 3 once IPython's magic, shell and help lines are dropped."""
    cells = [c for c in code_cells if c.strip()]
    if not cells:
        return False
    parsed = 0
    for cell in cells:
        lines = [line for line in cell.splitlines() if not _IPYTHON_LINE.match(line)]
        try:
            ast.parse("\n".join(lines))
            parsed += 1
        except (SyntaxError, ValueError):
            continue
    return parsed * 2 > len(cells)


def script_language(nb: Any, facts: dict[str, Any]) -> Language:
    """The script's language (recipe.md §6); ``NotebookError`` when none can be told or written."""
    from jupytext.languages import _SCRIPT_EXTENSIONS

    info = nb.metadata.get("language_info") or {}
    kernel = nb.metadata.get("kernelspec") or {}
    info = info if isinstance(info, dict) else {}
    kernel = kernel if isinstance(kernel, dict) else {}
    named = info.get("file_extension")
    if named in _SCRIPT_EXTENSIONS:
        return Language(named, "language_info")
    for source, name in (
        ("kernelspec", kernel.get("language")),
        ("language_info", info.get("name")),
        ("nbformat3_cells", facts.get("cell_language")),
    ):
        if ext := _extension_of(name):
            return Language(ext, source)
        named = named or name
    if named:  # the kernel says, but jupytext cannot write it as a script
        raise NotebookError("unsupported_language", str(named))
    if looks_like_python([c.source for c in nb.cells if c.cell_type == "code"]):
        return Language(".py", "detected")
    raise NotebookError("unknown_language", "no kernel metadata and the code is not Python")


def script_text(nb: Any, language: Language, header: bool = False) -> str:
    """``<jupyter_script>{script}<|endoftext|>``: the notebook as a jupytext "light" script."""
    if not any(c.source.strip() for c in nb.cells):
        raise NotebookError("empty_notebook")
    nb = _nbformat().from_dict(dict(nb))  # shallow: only the metadata below is changed
    nb.metadata = dict(nb.metadata)
    if not header:
        nb.metadata["jupytext"] = {"notebook_metadata_filter": "-all"}
    fmt = f"{language.extension[1:]}:light"
    try:
        with warnings.catch_warnings(), _no_cell_validation():
            warnings.simplefilter("ignore")  # "nbformat 4.x not tested with this jupytext": it works
            script = _jupytext().writes(nb, fmt=fmt)
    # jupytext raises what an odd cell leads it to; the notebook is removed with the error as detail
    except Exception as e:
        raise NotebookError("conversion_failed", f"{type(e).__name__}: {e}") from None
    return f"{JUPYTER_SCRIPT}{script}{EOS}"


def first_text_output(cell: Any) -> str | None:
    """The first stream output, or ``text/plain`` of a result or display, of a code cell."""
    for out in cell.get("outputs") or []:
        kind = out.get("output_type")
        if kind == "stream":
            text = out.get("text")
        elif kind in ("execute_result", "display_data"):
            text = (out.get("data") or {}).get("text/plain")
        else:
            continue
        if text is not None:
            return "".join(text) if isinstance(text, list) else str(text)
    return None


def structured_text(nb: Any, max_output_chars: int = MAX_OUTPUT_CHARS) -> str:
    """``<jupyter_start>`` then ``<jupyter_text>{markdown}<jupyter_code>{code}<jupyter_output>{out}``
    per (markdown, code) group pair, ``<|endoftext|>`` at the end (recipe.md §6)."""
    groups: list[tuple[str, list[Any]]] = []
    for cell in nb.cells:
        if cell.cell_type not in ("markdown", "code") or not cell.source.strip():
            continue
        if groups and groups[-1][0] == cell.cell_type:
            groups[-1][1].append(cell)
        else:
            groups.append((cell.cell_type, [cell]))
    if groups and groups[0][0] == "code":
        groups = groups[1:]
    if groups and groups[-1][0] == "markdown":
        groups = groups[:-1]
    if not groups:
        raise NotebookError("no_text_code_pairs")
    parts = [JUPYTER_START]
    for (_, markdown), (_, code) in zip(groups[0::2], groups[1::2], strict=True):
        output = first_text_output(code[-1])
        if output is None:
            output = EMPTY_OUTPUT
        elif len(output) > max_output_chars:
            output = output[:max_output_chars] + TRUNCATED
        parts += [JUPYTER_TEXT, "\n\n".join(c.source for c in markdown)]
        parts += [JUPYTER_CODE, "\n".join(c.source for c in code), JUPYTER_OUTPUT, output]
    return "".join(parts) + EOS
