"""semseg-bench: the harness (data, metrics, complexity, speed, training, records, reporting)."""

__version__ = "0.1.0"
