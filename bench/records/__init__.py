"""Run records: the typed schema, older versions and files.

The schema is :mod:`.schema`, the upgrade of older versions :mod:`.upgrade`, reading and
writing record files :mod:`.store`. Records stand alone: this package imports nothing of the
suite, runner, training, measurement or reporting code.
"""

from bench.records.schema import (
    Amendment,
    ArchSection,
    Complexity,
    Crosscheck,
    DatasetSection,
    Env,
    ErrorInfo,
    LatencyMs,
    Metrics,
    Normalised,
    Protocol,
    PublishedFigure,
    RunFlags,
    RunRecord,
    Samples,
    Speed,
    ThroughputPoint,
    TrainAugment,
    TrainInfo,
    WeightsUsed,
)
from bench.records.store import (
    RECORDS_DIR,
    SAMPLES_DIR,
    created_stamp,
    latest_ok,
    load_records,
    new_run_id,
    read_record,
    record_files,
    record_path,
    utc_now,
    write_record,
)
from bench.records.upgrade import SCHEMA_VERSION, baseline_title

__all__ = [
    "RECORDS_DIR",
    "SAMPLES_DIR",
    "SCHEMA_VERSION",
    "Amendment",
    "ArchSection",
    "Complexity",
    "Crosscheck",
    "DatasetSection",
    "Env",
    "ErrorInfo",
    "LatencyMs",
    "Metrics",
    "Normalised",
    "Protocol",
    "PublishedFigure",
    "RunFlags",
    "RunRecord",
    "Samples",
    "Speed",
    "ThroughputPoint",
    "TrainAugment",
    "TrainInfo",
    "WeightsUsed",
    "baseline_title",
    "created_stamp",
    "latest_ok",
    "load_records",
    "new_run_id",
    "read_record",
    "record_files",
    "record_path",
    "utc_now",
    "write_record",
]
