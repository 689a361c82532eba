"""Shared test helpers (not a test module): imported as ``tests.factories``.

* :func:`read_record_files` reads a results folder's record files with ``json`` alone, as a
  user's script would: tests of what the harness wrote check the files, not the type that
  wrote them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_record_files(results_dir: Path) -> list[dict[str, Any]]:
    """Every ``records/*.json`` of ``results_dir`` as parsed JSON, sorted by ``run_id``."""
    files = sorted((Path(results_dir) / "records").glob("*.json"))
    return sorted(
        (json.loads(p.read_text(encoding="utf-8")) for p in files), key=lambda r: r["run_id"]
    )
