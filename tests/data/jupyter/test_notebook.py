"""Notebooks as StarCoder2's script and structured texts (recipe.md §6), on real notebooks from
PyPI sdists (tests/fixtures/notebooks/README.md says which)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackcoder.data.jupyter.extractor import SCRIPTS, STRUCTURED, notebook_texts
from stackcoder.data.jupyter.notebook import (
    NotebookError,
    looks_like_python,
    parse_notebook,
    script_language,
    structured_text,
)

pytest.importorskip("jupytext", reason="jupytext is not installed")

NOTEBOOKS = Path(__file__).parents[2] / "fixtures" / "notebooks"
JUPYTER = NOTEBOOKS / "jupytext" / "jupyter.ipynb"
IR = NOTEBOOKS / "jupytext" / "ir_notebook.ipynb"
OUTPUTS = NOTEBOOKS / "jupytext" / "text_outputs_and_images.ipynb"
V3 = NOTEBOOKS / "nbformat" / "test3_no_metadata.ipynb"


def test_python_notebook_as_script_and_structured():
    texts, facts = notebook_texts(JUPYTER.read_text())
    assert facts == {"nbformat": "4.2", "language_source": "language_info", "extension": ".py"}
    script = texts[SCRIPTS]
    assert script.startswith("<jupyter_script># # Jupyter notebook\n#\n# This notebook is a simple")
    assert "\n\na = 1\nb = 2\na + b\n\n# Now we return a few tuples\n" in script
    assert script.endswith("# And this is already the end of the notebook\n<|endoftext|>")
    assert "jupytext_version" not in script  # no YAML header: the text depends on the notebook alone
    # the trailing markdown cell is dropped; each code group's last output follows it
    assert texts[STRUCTURED] == (
        "<jupyter_start><jupyter_text># Jupyter notebook\n\nThis notebook is a simple jupyter notebook. "
        "It only has markdown and code cells. And it does not contain consecutive markdown cells. We "
        "start with an addition:<jupyter_code>a = 1\nb = 2\na + b<jupyter_output>3"
        "<jupyter_text>Now we return a few tuples<jupyter_code>a, b\na, b, a+b<jupyter_output>(1, 2, 3)"
        "<|endoftext|>"
    )


def test_groups_outputs_and_empty_output():
    texts, _ = notebook_texts(OUTPUTS.read_text())
    structured = texts[STRUCTURED]
    # two markdown cells grouped (joined by a blank line), then two code cells (joined by a newline)
    assert structured.startswith(
        "<jupyter_start><jupyter_text>This notebook contains outputs of many different types: text, "
        "HTML, plots and errors.\n\n# Text outputs\n\nUsing `print`"
    )
    assert "sys.stderr.write('using sys.stderr.write')\nimport logging\n" in structured
    # the group's last code cell printed nothing to stdout: <empty_output>
    assert "logging.error('Error')<jupyter_output><empty_output><jupyter_text># HTML outputs" in structured
    # display_data's text/plain is an output; an error is not
    assert "display(pd.DataFrame([6]))<jupyter_output>   0\n0  5<jupyter_text># Images" in structured
    assert structured.endswith("undefined_variable<jupyter_output><empty_output><|endoftext|>")
    assert structured.count("<jupyter_text>") == structured.count("<jupyter_code>") == 4


def test_long_output_is_cut_at_1000_characters():
    nb = json.loads(JUPYTER.read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code" and c["outputs"])
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["x" * 600 + "\n", "y" * 600]}]
    parsed, _ = parse_notebook(json.dumps(nb))
    out = structured_text(parsed).split("<jupyter_output>")[1].split("<jupyter_text>")[0]
    assert out == "x" * 600 + "\n" + "y" * 399 + "[...]"
    assert structured_text(parsed, max_output_chars=2000).count("y" * 600) == 1


def test_r_notebook_is_a_script_not_structured():
    texts, facts = notebook_texts(IR.read_text())
    assert facts["extension"] == ".r"
    assert texts[SCRIPTS] == (
        "<jupyter_script># This is a jupyter notebook that uses the IR kernel.\n\nsum(1:10)\n\n"
        "plot(cars)\n\n\n<|endoftext|>"
    )
    assert isinstance(texts[STRUCTURED], NotebookError) and texts[STRUCTURED].reason == "not_python"


def test_nbformat3_without_metadata_is_upgraded():
    nb, facts = parse_notebook(V3.read_text())
    assert nb.nbformat == 4 and facts == {"nbformat": "3.0", "cell_language": "python"}
    assert script_language(nb, facts).source == "nbformat3_cells"
    texts, _ = notebook_texts(V3.read_text())
    # v3 heading cells became markdown headings; code kept, a cell magic commented out
    assert '# ## Printed Using Python\n\nprint("hello")\n' in texts[SCRIPTS]
    assert '# + language="javascript"\n# console.log("hi");\n# -\n' in texts[SCRIPTS]
    assert '<jupyter_code>print("hello")<jupyter_output>hello\n<jupyter_text>## Pyout' in texts[STRUCTURED]


def test_language_from_kernelspec_then_from_the_code():
    nb = json.loads(IR.read_text())
    del nb["metadata"]["language_info"]
    parsed, facts = parse_notebook(json.dumps(nb))
    assert script_language(parsed, facts).extension == ".R"  # kernelspec.language "R"
    nb = json.loads(JUPYTER.read_text())
    nb["metadata"] = {}
    parsed, facts = parse_notebook(json.dumps(nb))
    language = script_language(parsed, facts)
    assert (language.extension, language.source) == (".py", "detected")
    # the R notebook's code does not parse as Python: no language, the notebook is removed
    nb = json.loads(IR.read_text())
    nb["metadata"] = {}
    parsed, facts = parse_notebook(json.dumps(nb))
    with pytest.raises(NotebookError) as e:
        script_language(parsed, facts)
    assert e.value.reason == "unknown_language"


def test_ipython_lines_do_not_stop_python_detection():
    assert looks_like_python(["%matplotlib inline\nimport numpy as np\n!ls\nnp.sum?", "x = 1"])
    assert not looks_like_python(["sum(1:10)", "x <- c(1, 2)"])


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (JUPYTER.read_text()[:700], "invalid_json"),  # a truncated file
        ('{"cells": []}', "invalid_notebook"),  # no nbformat version
        ('{"nbformat": 9, "cells": []}', "unsupported_nbformat"),
        (
            '{"nbformat": 4, "nbformat_minor": 2, "metadata": {}, "cells": [{"source": "x"}]}',
            "invalid_notebook",
        ),
    ],
)
def test_unparseable_notebooks_give_a_reason(text, reason):
    texts, facts = notebook_texts(text)
    assert facts == {}
    for part in (SCRIPTS, STRUCTURED):
        assert isinstance(texts[part], NotebookError) and texts[part].reason == reason


def test_kernel_language_jupytext_cannot_write():
    nb = json.loads(IR.read_text())
    nb["metadata"] = {"kernelspec": {"language": "brainfuck", "name": "bf"}}
    texts, _ = notebook_texts(json.dumps(nb))
    assert texts[SCRIPTS].reason == "unsupported_language" and texts[SCRIPTS].detail == "brainfuck"
