"""The server tests skip without FastAPI; their checkpoint (`serve_checkpoint`) is in tests/conftest.py."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
