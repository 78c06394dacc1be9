"""Ingestion for ``stackcoder build``: SOURCE arguments to repositories, repositories to files.

``discover_sources`` resolves and checks the SOURCES before the pipeline starts; the
``reader.RepositoryReader`` step yields one ``Document`` per file. One module per source kind:
``directory``, ``git``, ``archive``, ``table``. See docs/ingestion.md.
"""

# not the reader step (``reader.RepositoryReader``): it imports datatrove, and importing a light
# module of this package (``table.json_record``, for the corpus reader) must not load the engine
from stackcoder.data.readers.raw import RawFile
from stackcoder.data.readers.sources import Source, discover_sources

__all__ = ["RawFile", "Source", "discover_sources"]
