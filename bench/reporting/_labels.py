"""Point labels of the scatter figures that never overlap (greedy placement).

Each point's label is tried at a few offsets around its marker, most important points first
(the caller's order); a position is taken only when the label stays inside the axes and
overlaps no label already placed (it may cross a marker: labels are drawn above the markers,
on a translucent white backing). A point
whose label fits nowhere gets a small number instead, and the caller lists the numbers in a key
beside the plot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

FONT_SIZE = 8
NUMBER_FONT_SIZE = 7
# Labels sit above the markers on a translucent white backing, readable where they cross one.
_BACKING = {"boxstyle": "round,pad=0.1", "facecolor": "white", "alpha": 0.7, "linewidth": 0}


def _candidates(radius: float) -> list[tuple[float, float, str, str]]:
    """(dx, dy, ha, va) in points: right-up, right-down, left-up, left-down, above, below."""
    r = radius + 2.0
    return [
        (r, r * 0.6, "left", "bottom"),
        (r, -r * 0.6, "left", "top"),
        (-r, r * 0.6, "right", "bottom"),
        (-r, -r * 0.6, "right", "top"),
        (0.0, r + 1.0, "center", "bottom"),
        (0.0, -r - 1.0, "center", "top"),
    ]


def place_labels(
    figure: Figure,
    ax: Axes,
    xs: Sequence[float],
    ys: Sequence[float],
    sizes: Sequence[float],
    texts: Sequence[str],
    avoid: Sequence[Artist] = (),
) -> list[int]:
    """Labels the points where their labels fit; returns the indices of those that got a number.

    Args:
        figure: The figure. Its layout is drawn here and then frozen (layout engine "none"),
            so call this after everything that moves the axes (scales, limits, titles, legend)
            and add nothing afterwards that needs room.
        ax: The axes of the points.
        xs: Data x of the points, in the order labels are placed (most important first).
        ys: Data y of the points.
        sizes: Marker areas in points^2.
        texts: The labels.
        avoid: Artists no label may overlap (the legend, baseline notes).

    Returns:
        Indices (into the inputs) of the points labelled with a number, in placing order; the
        number shown is the position in this list plus one.
    """
    figure.canvas.draw()
    figure.set_layout_engine("none")  # the positions measured below stay the saved ones
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    axes_box = ax.get_window_extent(renderer)
    placed: list[Bbox] = [artist.get_window_extent(renderer) for artist in avoid]
    numbered: list[int] = []
    for i, (x, y, size, text) in enumerate(zip(xs, ys, sizes, texts, strict=True)):
        radius = math.sqrt(float(size)) / 2.0
        for dx, dy, ha, va in _candidates(radius):
            note = ax.annotate(
                text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                fontsize=FONT_SIZE, zorder=5, bbox=_BACKING,
            )  # fmt: skip
            box = note.get_window_extent(renderer)
            inside = axes_box.contains(box.x0, box.y0) and axes_box.contains(box.x1, box.y1)
            if inside and not any(box.overlaps(b) for b in placed):
                placed.append(box)
                break
            note.remove()
        else:
            numbered.append(i)
            ax.annotate(
                str(len(numbered)), (x, y), xytext=(0, 0), textcoords="offset points",
                ha="center", va="center", fontsize=NUMBER_FONT_SIZE, fontweight="bold", zorder=5,
            )  # fmt: skip
    return numbered
