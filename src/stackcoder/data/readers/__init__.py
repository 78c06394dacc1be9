"""Ingestion for ``stackcoder build``: SOURCE arguments to repositories, repositories to files.

``discover_sources`` resolves and checks the SOURCES before the pipeline starts; the
``RepositoryReader`` step yields one ``Document`` per file. One module per source kind:
``directory``, ``git``, ``archive``, ``table``. See docs/ingestion.md.
"""

from stackcoder.data.readers.raw import RawFile
from stackcoder.data.readers.reader import RepositoryReader
from stackcoder.data.readers.sources import Source, discover_sources

__all__ = ["RawFile", "RepositoryReader", "Source", "discover_sources"]
