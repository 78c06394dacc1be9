"""The other sources of StarCoder2's training mix (recipe.md §6) as *parts* of a build.

A part is one kind of training text that is not a source file: ``jupyter_scripts``,
``jupyter_structured``, ``text/<kind>``, and (GHArchive) issues and pull requests. Each goes through
the same engine as files: datatrove steps on the local, Ray or Slurm executor, resumable, every
removed record written to ``DIR/removed/<part>/`` with its stage and reason. docs/sources.md has
the layout and the choices.

How a source becomes a part (what ``data/pipeline.py`` does for notebooks and ``--text``):

1. Render each item as a record: ``records.record(text, id=..., source=..., repo_name=...,
   path=..., language=..., metadata={...}, license_type=..., ...)``, a datatrove ``Document`` whose
   ``text`` is the final training text in StarCoder2's format for the source (special tokens from
   ``tokenizer/special_tokens.py``), ending with ``<|endoftext|>`` (``records.with_eos``). Columns:
   ``records.PART_COLUMNS``; ``blob_id`` and ``length_bytes`` are computed from the text. An item
   the source drops is still yielded, marked with ``step.mark_removed(doc, stage, reason)``: it is
   counted and written to ``removed/<part>/``; later steps pass it on untouched.
2. ``layout = PartLayout(build_root, "issues")``, then ``part = plan_part(layout, recipe=recipe,
   steps=PartSteps.from_recipe(recipe[...]), tasks=T, buckets=B, benchmark_files=...,
   intake=[YourReader(...), OptOutFilter(...), your filters...])``. The intake steps run as pass
   ``<part>.intake`` (T tasks; task r yields its share), followed by ``layout.intake_writer()``;
   then dedup within the part, PII, decontamination and malware, and ``DIR/<part>/*.parquet``.
   Steps that remove records set ``stage`` (the funnel's name) and mark records removed
   (``step.FileStep`` does both).
3. Run ``part.passes`` after the build's own (``executor.run_passes``); ``part_stats(part)`` then
   gives the part's funnel per stage and reason, its dedup and PII counts (``stats.json["parts"]``).
"""

from stackcoder.data.parts.passes import Part, PartLayout, PartSteps, final_steps, part_stats, plan_part
from stackcoder.data.parts.records import (
    PART_COLUMNS,
    PART_SCHEMA,
    REMOVED_PART_SCHEMA,
    WORK_SCHEMA,
    git_blob_id,
    record,
    with_eos,
)
from stackcoder.data.parts.writer import PartSink, PartWriter

__all__ = [
    "PART_COLUMNS",
    "PART_SCHEMA",
    "REMOVED_PART_SCHEMA",
    "WORK_SCHEMA",
    "Part",
    "PartLayout",
    "PartSink",
    "PartSteps",
    "PartWriter",
    "final_steps",
    "git_blob_id",
    "part_stats",
    "plan_part",
    "record",
    "with_eos",
]
