"""What the static site should show, written out for its tests (not imported from the site), and
the FIXTURE sample files the figure and site tests share."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.records import RunRecord

# How the page shows a CSV number: (scale, decimals). Other columns (counts, the year) are shown
# as the CSV writes them.
SHOWN = {
    "miou": (100, 1),
    "miou_ci95_lo": (100, 1),
    "miou_ci95_hi": (100, 1),
    "miou_seed_std": (100, 2),
    "pixel_acc": (100, 1),
    "mean_acc": (100, 1),
    "published_miou": (100, 1),
    "efficiency": (100, 1),
    "params_m": (1, 2),
    "gflops": (1, 2),
    "latency_p50_ms": (1, 2),
    "throughput_ips": (1, 1),
    "peak_mem_mb": (1, 1),
    "speed_variant_p50_ms": (1, 2),
    "speed_variant_speedup": (1, 2),
}
INPUTS_FILE = "samples/quick__synthetic__inputs.npz"


def shown(column: str, value: str) -> str:
    """What the page should show for a CSV field: an en dash, the field, or it scaled."""
    if value == "":
        return "–"
    if column not in SHOWN:
        return value
    scale, digits = SHOWN[column]
    return f"{float(value) * scale:.{digits}f}"


def write_samples(results_dir: Path, records: list[RunRecord]) -> None:
    """FIXTURE sample files: 2 images of 8x8; each prediction is the label shifted by a pixel."""
    (results_dir / "samples").mkdir(parents=True, exist_ok=True)
    label = np.zeros((2, 8, 8), dtype=np.uint8)
    label[:, 2:5, 2:5] = 1
    label[:, 5:7, 5:7] = 2
    label[0, 0, 0] = 255  # one ignore pixel
    image = np.stack([label * 80] * 3, axis=-1).astype(np.uint8)
    indices = np.array([4, 9])
    np.savez(results_dir / INPUTS_FILE, image=image, label=label, indices=indices)
    for record in records:
        if record.samples is not None:
            pred = (np.roll(label, 1, axis=2) % 3).astype(np.uint8)
            np.savez(results_dir / record.samples.file, pred=pred, indices=indices)
