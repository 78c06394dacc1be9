"""Metadata keys shared between pipeline steps, defined once.

Names follow The Stack v2's column names where one exists, so the output parquet files have the
published schema (recipe.md §1). A *file* is one source file (one datatrove ``Document``); a
*repository* is what a SOURCE holds; a *document* (later stages) is one repository's training text.
"""

# The Stack v2 columns
BLOB_ID = "blob_id"  # git SHA-1 of the raw bytes: sha1(b"blob <len>\0" + bytes)
REPO_NAME = "repo_name"
PATH = "path"
CONTENT = "content"
LANGUAGE = "language"
EXTENSION = "extension"
IS_VENDOR = "is_vendor"
IS_GENERATED = "is_generated"
DETECTED_LICENSES = "detected_licenses"
LICENSE_TYPE = "license_type"
LENGTH_BYTES = "length_bytes"
SRC_ENCODING = "src_encoding"
REVISION_ID = "revision_id"
REVISION_DATE = "revision_date"
STARS = "star_events_count"
FORKS = "fork_events_count"
HOST_LICENSE = "gha_license_id"  # The Stack v2's name for the license from GitHub metadata

# ours
FILE_ID = "file_id"  # between passes: (shard << 32) | row in work/filtered/<shard>.parquet; not written out
SOURCE = "source"  # the SOURCE argument the file came from, for per-source accounting
REMOVED_STAGE = "removed_stage"
REMOVED_REASON = "removed_reason"
REMOVED_DETAIL = "removed_detail"  # optional free text (e.g. which benchmark matched)

# records of the other sources (recipe.md §6, ``data/parts``): notebooks, issues, text extras
RECORD_ID = "id"  # unique within its part: ``repo_name:path`` for a notebook, the source's own id else
TEXT = "text"  # the training text, in StarCoder2's format for its source, ending with <|endoftext|>
RECORD_METADATA = "metadata"  # JSON object: what a source knows beyond the columns (kernel, input columns)
NUMBER = "number"  # an issue's or pull request's number in its repository; null for other sources

# license classes (recipe.md §1.2)
PERMISSIVE = "permissive"
NO_LICENSE = "no_license"
NON_PERMISSIVE = "non_permissive"
LICENSE_CLASSES = (PERMISSIVE, NO_LICENSE, NON_PERMISSIVE)

# columns of DIR/files/*.parquet, in order
FILE_COLUMNS = (
    BLOB_ID,
    REPO_NAME,
    PATH,
    CONTENT,
    LANGUAGE,
    EXTENSION,
    IS_VENDOR,
    IS_GENERATED,
    DETECTED_LICENSES,
    LICENSE_TYPE,
    LENGTH_BYTES,
    SRC_ENCODING,
    REVISION_ID,
    REVISION_DATE,
    STARS,
    FORKS,
    HOST_LICENSE,
    SOURCE,
)
