"""Reading records of older schema versions: the one place that knows how versions differ.

:func:`upgrade` brings a parsed JSON record to :data:`~bench.records.schema.SCHEMA_VERSION`
step by step before it is typed. Files on disk are not changed; ``python run_bench.py
upgrade-records`` rewrites a results folder in the current schema (and re-counts what an
upgrade in memory cannot know).

Version 1 -> 2:

* ``complexity.params`` counted every registered parameter, auxiliary training heads included,
  while ``macs`` counted the eval-mode forward pass, which never runs them. Version 2 counts
  ``params`` on the network as evaluated and keeps the old figure as ``params_with_aux``. For an
  entry that declares no auxiliary outputs (``arch_info.aux_weights`` empty) the two are the
  same network, so ``params`` is kept; otherwise the evaluated count cannot be known from the
  record and ``params`` (and ``trainable_params``) become null until ``upgrade-records``
  re-counts them.
* ``env.cpu`` (the precise CPU) did not exist: it stays absent (null).
* The constant-prediction baseline was titled "all background (baseline)" even where class 0
  is not a background (CamVid's class 0 is ``sky``); it is re-titled after its class 0.
* ``amendments`` did not exist: empty.

Version 2 -> 3:

* ``kind`` may be ``loaded`` (published weights evaluated, not trained here) and the
  ``weights`` section says which; older records have none (null).
* ``metrics.confusion_matrix`` is new; older records did not keep it (null).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from bench.records._codec import Context

SCHEMA_VERSION = 3
"""The run-record schema version this harness writes (defined here once); older records are
upgraded when read."""
OLD_BASELINE_TITLE = "all background (baseline)"


def baseline_title(class0: str) -> str:
    """Title of the constant class-0 baseline row.

    Returns:
        ``"all background (baseline)"`` where class 0 is the background, else a title naming
        the class (``"all sky (class 0, baseline)"`` on CamVid).
    """
    if class0 == "background":
        return OLD_BASELINE_TITLE
    return f"all {class0} (class 0, baseline)"


def _section(data: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = data.get(key)
    return value if isinstance(value, dict) else None


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(data)
    out["schema_version"] = 2
    complexity = _section(out, "complexity")
    arch_info = _section(out, "arch_info") or {}
    if complexity is not None and "params_with_aux" not in complexity:
        complexity["params_with_aux"] = complexity.get("params")
        if arch_info.get("aux_weights"):
            complexity["params"] = None
            complexity["trainable_params"] = None
    if out.get("kind") == "baseline" and arch_info.get("title") == OLD_BASELINE_TITLE:
        dataset_info = _section(out, "dataset_info") or {}
        metrics = _section(out, "metrics") or {}
        names = dataset_info.get("class_names") or list(metrics.get("per_class_iou") or {})
        class0 = names[0] if names and isinstance(names[0], str) else "background"
        arch_info["title"] = baseline_title(class0)
    return out


def _v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(data)
    out["schema_version"] = 3
    out.setdefault("weights", None)
    metrics = _section(out, "metrics")
    if metrics is not None:
        metrics.setdefault("confusion_matrix", None)
    return out


_STEPS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2, 2: _v2_to_v3}


def upgrade(data: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """``data`` at :data:`SCHEMA_VERSION` (a new dict when it was older; ``data`` is not changed).

    Raises:
        RecordError: ``schema_version`` is missing, not an integer, or newer than this harness.
    """
    version = data.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ctx.error(
            "schema_version",
            f"an integer from 1 to {SCHEMA_VERSION}",
            version,
            "The field is required." if version is None else "",
        )
    if version > SCHEMA_VERSION:
        raise ctx.error(
            "schema_version",
            f"at most {SCHEMA_VERSION}",
            version,
            "The record was written by a newer semseg-bench; upgrade the harness to read it.",
        )
    while version < SCHEMA_VERSION:
        data = _STEPS[version](data)
        version += 1
    return data
