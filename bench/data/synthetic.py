"""The built-in ``synthetic`` dataset: procedurally drawn shapes on a textured, noisy background.

Every image is generated on the fly in ``__getitem__`` from a generator seeded by
``(seed, split, index)``, so the dataset needs no files, is identical on every machine, and the
three splits never share an image.

What is drawn:

* background (class 0): a flat base colour, low-frequency value noise per channel and a
  triangle-wave stripe pattern of random frequency, orientation and phase;
* 1..``max_shapes`` shapes, each one of ``disc, square, triangle, ring, cross, star, bar``
  (class ids 1..7; ``num_classes`` keeps the first ``num_classes - 1``), with random size,
  rotation and position, a flat colour plus a soft linear shading. A shape's colour comes from
  the same distribution whatever its class (uniform in the RGB cube, re-drawn only when it is too
  close to the background's colour, which does not depend on the class), so the class can only
  be recognised from geometry;
* shapes are painted in order, so later shapes occlude earlier ones; a placement that would hide
  more than half of an earlier shape is re-drawn (up to a few tries, then the shape is dropped),
  so that every instance stays recognisable;
* uniform per-pixel noise on top.

Geometry is rasterised with vectorised signed distances (in pixels, over the shape's bounding
box only): the image gets a one-pixel anti-aliased edge, the mask and instance map are hard
labels (a pixel belongs to a shape when its centre is inside).

Cross-machine identity: the only random source is ``numpy.random.default_rng`` (PCG64, whose
stream is the same on every platform), and only its ``random`` and ``integers`` draws are used,
which are exact arithmetic on the raw bits. Per-pixel work uses only ``+ - * / sqrt abs
min max floor``, all correctly rounded under IEEE 754, so no platform-dependent ``libm``
(``sin``, ``exp``, ``atan2``) and no BLAS enter the pixels. Rotations are random unit vectors
(rejection sampling in the unit disc), and the star's symmetry axes are closed-form square roots.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import TypedDict

import numpy as np
import torch
from torch.utils.data import Dataset

from bench.data.info import DatasetInfo
from bench.data.registry import register_dataset
from bench.errors import ConfigError

SHAPE_NAMES: tuple[str, ...] = ("disc", "square", "triangle", "ring", "cross", "star", "bar")
CLASS_NAMES: tuple[str, ...] = ("background", *SHAPE_NAMES)
# Background black; shapes get well-separated saturated colours (for figures only: the images
# themselves never use these).
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
)
SPLITS: tuple[str, ...] = ("train", "val", "test")
_SPLIT_CODES = MappingProxyType({"train": 0, "val": 1, "test": 2})
DEFAULT_NUM_SAMPLES = MappingProxyType({"train": 2000, "val": 200, "test": 200})

# Shape size is the diameter of the shape's bounding circle as a fraction of min(H, W). At
# 64-128 px this gives shapes of 16-64 px across: large enough for the corners of a star or the
# hole of a ring to survive the stride-8/16 encoders of small CNNs.
DEFAULT_MIN_SCALE = 0.25
DEFAULT_MAX_SCALE = 0.5
MIN_SIZE = 16

# Per-channel mean/std of images at default settings (size 128, num_classes 8, max_shapes 3,
# default scales, seed 0), on the 0..1 scale. Measured with
# ``measure_channel_stats(SyntheticShapes("train"), count=500)``, i.e. exact integer sums over
# all pixels of train images 0..499, rounded to 4 decimals; tests/test_data_synthetic.py re-measures
# them. Other settings shift them by little (shape and background colours have the same
# distribution), so the same constants are used for every configuration.
SYNTHETIC_MEAN: tuple[float, float, float] = (0.5060, 0.4975, 0.5009)
SYNTHETIC_STD: tuple[float, float, float] = (0.2391, 0.2432, 0.2469)

# Generator parameters (not user options: changing any of them changes every image).
_BG_COLOR_RANGE = (0.1, 0.9)
_SHAPE_COLOR_RANGE = (0.05, 0.95)
_MIN_CONTRAST = 0.35  # Euclidean RGB distance between a shape's colour and the background's
_COLOR_TRIES = 8
_VALUE_NOISE_CELLS = 4  # value-noise lattice is (cells + 1) x (cells + 1) per channel
_VALUE_NOISE_AMPLITUDE = 0.12
_STRIPE_CYCLES = (2.0, 8.0)  # stripe periods per min(H, W)
_STRIPE_MAX_AMPLITUDE = 0.12
_SHADING_MAX_AMPLITUDE = 0.12
_PIXEL_NOISE_HALF_WIDTH = 0.06  # uniform noise in [-w, w] per pixel and channel
_MAX_OCCLUSION = 0.5
_PLACEMENT_TRIES = 4
# Per-class shape parameter range: ring inner/outer radius, cross arm width/length, star
# inner/outer radius, bar width/length. Unused (0, 0) for the others.
_AUX_RANGE: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),  # background (never drawn)
    (0.0, 0.0),  # disc
    (0.0, 0.0),  # square
    (0.0, 0.0),  # triangle
    (0.45, 0.65),  # ring
    (0.22, 0.34),  # cross
    (0.38, 0.50),  # star
    (0.20, 0.35),  # bar
)

_SQRT3_HALF = math.sqrt(3.0) / 2.0
_SQRT5 = math.sqrt(5.0)
# Unit normals of the star's mirror axes at 108, 72 and 36 degrees from the tip direction (+v),
# each pointing towards larger angles: (cos a, -sin a) with closed-form cos/sin.
_STAR_AXES: tuple[tuple[float, float], ...] = (
    (-(_SQRT5 - 1.0) / 4.0, -math.sqrt(10.0 + 2.0 * _SQRT5) / 4.0),
    ((_SQRT5 - 1.0) / 4.0, -math.sqrt(10.0 + 2.0 * _SQRT5) / 4.0),
    ((1.0 + _SQRT5) / 4.0, -math.sqrt(10.0 - 2.0 * _SQRT5) / 4.0),
)
_SIN36 = math.sqrt(10.0 - 2.0 * _SQRT5) / 4.0
_COS36 = (1.0 + _SQRT5) / 4.0


def _as_hw(size: int | tuple[int, int]) -> tuple[int, int]:
    """Validate ``size`` (int or ``(H, W)``) and return ``(H, W)``."""
    if isinstance(size, int) and not isinstance(size, bool):
        hw = (size, size)
    elif (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) for s in size)
    ):
        hw = (int(size[0]), int(size[1]))
    else:
        raise ConfigError(
            f"synthetic: size must be an int or a pair of ints (H, W), got {size!r}. "
            f"Pass e.g. size=128 or size=(96, 128)."
        )
    if min(hw) < MIN_SIZE:
        raise ConfigError(
            f"synthetic: size {hw} is too small; both H and W must be >= {MIN_SIZE} pixels "
            f"for the shapes to be recognisable. Pass a larger size."
        )
    return hw


def _check_options(
    split: str,
    num_samples: int | None,
    num_classes: int,
    max_shapes: int,
    min_scale: float,
    max_scale: float,
    seed: int,
) -> int:
    """Validate the generator options; return the number of samples of ``split``."""
    if split not in _SPLIT_CODES:
        raise ConfigError(
            f"synthetic: unknown split {split!r}; valid splits are {', '.join(SPLITS)}."
        )
    if not isinstance(num_classes, int) or not 2 <= num_classes <= len(CLASS_NAMES):
        raise ConfigError(
            f"synthetic: num_classes must be an int in 2..{len(CLASS_NAMES)} (background plus "
            f"1..{len(SHAPE_NAMES)} shapes), got {num_classes!r}."
        )
    if not isinstance(max_shapes, int) or max_shapes < 1:
        raise ConfigError(
            f"synthetic: max_shapes must be an int >= 1 (shapes per image), got {max_shapes!r}."
        )
    if not (
        isinstance(min_scale, (int, float))
        and isinstance(max_scale, (int, float))
        and 0.0 < min_scale <= max_scale <= 1.0
    ):
        raise ConfigError(
            f"synthetic: scales must satisfy 0 < min_scale <= max_scale <= 1 (shape diameter as a "
            f"fraction of min(H, W)), got min_scale={min_scale!r}, max_scale={max_scale!r}."
        )
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"synthetic: seed must be a non-negative int, got {seed!r}.")
    if num_samples is None:
        return DEFAULT_NUM_SAMPLES[split]
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        raise ConfigError(
            f"synthetic: num_samples must be a positive int (or None for the default "
            f"{DEFAULT_NUM_SAMPLES[split]} of split {split!r}), got {num_samples!r}."
        )
    return num_samples


class _Scalars:
    """Scalar uniforms from ``rng``, drawn in blocks: one numpy call per 64 numbers, not per number.

    (Per-call overhead of ``Generator.uniform`` dominated generation time before this.) Every
    value is ``rng.random()`` output, exact on every platform.
    """

    __slots__ = ("_rng", "_buf", "_pos")
    _BLOCK = 64

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._buf: list[float] = []
        self._pos = 0

    def uniform(self, low: float, high: float) -> float:
        """A uniform float in ``[low, high)``."""
        if self._pos == len(self._buf):
            self._buf = self._rng.random(self._BLOCK).tolist()
            self._pos = 0
        value = self._buf[self._pos]
        self._pos += 1
        return low + (high - low) * value

    def integer(self, low: int, high: int) -> int:
        """A uniform int in ``[low, high)`` (bias at most ``(high - low) / 2**53``)."""
        return low + min(int((high - low) * self.uniform(0.0, 1.0)), high - low - 1)

    def unit_vector(self) -> tuple[float, float]:
        """A uniformly oriented unit vector, without trigonometric functions (see module notes)."""
        while True:
            a = self.uniform(-1.0, 1.0)
            b = self.uniform(-1.0, 1.0)
            r2 = a * a + b * b
            if 1e-6 < r2 <= 1.0:
                r = math.sqrt(r2)
                return a / r, b / r


def _lerp_table(n: int, cells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower/upper lattice index and weight of each of ``n`` pixels on a ``cells``-cell lattice."""
    pos = np.arange(n, dtype=np.float64) * (cells / max(n - 1, 1))
    lo = np.minimum(np.floor(pos).astype(np.intp), cells - 1)
    weight = (pos - lo).astype(np.float32)
    return lo, lo + 1, weight


def _sdf(cls: int, u: np.ndarray, v: np.ndarray, radius: float, aux: float) -> np.ndarray:
    """Signed distance (pixels, < 0 inside) of shape class ``cls`` in its local frame.

    ``u`` and ``v`` are broadcastable local coordinates (rotation already applied where the shape
    is not rotation invariant). Polygons use the maximum of their edges' half-plane distances:
    exact inside and along edges, slightly under the true distance just outside convex corners,
    which only widens the anti-aliasing fringe there (the hard mask is exact).
    """
    if cls == 1:  # disc
        return np.sqrt(u * u + v * v) - radius
    if cls == 2:  # square, corners on the bounding circle
        return np.maximum(np.abs(u), np.abs(v)) - radius * math.sqrt(0.5)
    if cls == 3:  # equilateral triangle, vertices on the bounding circle (inradius R/2)
        hu = u * _SQRT3_HALF
        hv = v * 0.5
        return np.maximum(np.maximum(v, hu - hv), -hu - hv) - 0.5 * radius
    if cls == 4:  # ring
        r = np.sqrt(u * u + v * v)
        return np.maximum(r - radius, aux * radius - r)
    if cls == 5:  # cross: union of two perpendicular bars
        au = np.abs(u)
        av = np.abs(v)
        arm = radius / math.sqrt(1.0 + aux * aux)
        half_width = aux * arm
        return np.minimum(
            np.maximum(au - arm, av - half_width), np.maximum(au - half_width, av - arm)
        )
    if cls == 6:  # five-pointed star, tips on the bounding circle
        return _star_sdf(u, v, radius, aux * radius)
    if cls == 7:  # bar (elongated rectangle), corners on the bounding circle
        length = radius / math.sqrt(1.0 + aux * aux)
        return np.maximum(np.abs(u) - length, np.abs(v) - aux * length)
    raise ValueError(f"synthetic: no geometry for class id {cls} (expected 1..{len(SHAPE_NAMES)}).")


def _star_sdf(u: np.ndarray, v: np.ndarray, outer: float, inner: float) -> np.ndarray:
    """Signed distance to a five-pointed star with a tip on +v, by folding into one wedge.

    Three reflections across the star's mirror axes (and ``|u|``) map every point into the wedge
    between the tip direction and the neighbouring inner vertex (0..36 degrees), where the
    boundary is the single segment tip -> inner vertex.
    """
    x = np.abs(u)
    y = v
    for nx, ny in _STAR_AXES:
        d = np.maximum(x * nx + y * ny, 0.0)
        d += d  # reflect: p -= 2 * max(n.p, 0) * n
        x = x - d * nx
        y = y - d * ny
    # Segment from the tip (0, outer) to the inner vertex (inner*sin36, inner*cos36).
    bx = inner * _SIN36
    by = inner * _COS36 - outer
    px = x
    py = y - outer
    h = np.clip((px * bx + py * by) * (1.0 / (bx * bx + by * by)), 0.0, 1.0)
    dx = px - h * bx
    dy = py - h * by
    dist = np.sqrt(dx * dx + dy * dy)
    # Inside when on the origin's side of the tip -> inner-vertex line (cross product sign).
    outside = (bx * py - by * px) > 0.0
    return np.where(outside, dist, -dist)


class ShapesSample(TypedDict):
    """Everything the generator knows about one sample (see ``SyntheticShapes.sample``)."""

    image_uint8: np.ndarray  # (H, W, 3) uint8 RGB
    mask: np.ndarray  # (H, W) uint8 class ids
    instances: np.ndarray  # (H, W) int32, 0 = background, 1..n = visible shape instances
    labels: list[int]  # labels[k] = class id of instance k + 1
    full_areas: list[int]  # full_areas[k] = pixels of instance k + 1 before any occlusion


class SyntheticShapes(Dataset):
    """Procedural shapes dataset; one split, generated on the fly and deterministic.

    Args:
        split: One of ``"train"``, ``"val"``, ``"test"``.
        size: Image size, an int (square) or ``(H, W)``; both >= 16.
        num_samples: Number of images in the split (None: 2000 train, 200 val, 200 test).
        num_classes: 2..8: background plus the first ``num_classes - 1`` shapes of
            ``disc, square, triangle, ring, cross, star, bar``.
        max_shapes: Each image holds 1..``max_shapes`` shapes (fewer if a shape cannot be placed
            without hiding more than half of an earlier one).
        min_scale: Smallest shape diameter as a fraction of ``min(H, W)``.
        max_scale: Largest shape diameter as a fraction of ``min(H, W)``.
        seed: Base seed; image ``i`` of a split uses ``default_rng([seed, split_code, i])``.
        mean: Per-channel mean used for normalisation (0..1 scale).
        std: Per-channel std used for normalisation (0..1 scale).

    Raises:
        ConfigError: If an option is out of range (the message names the option and the range).
    """

    def __init__(
        self,
        split: str = "train",
        *,
        size: int | tuple[int, int] = 128,
        num_samples: int | None = None,
        num_classes: int = len(CLASS_NAMES),
        max_shapes: int = 3,
        min_scale: float = DEFAULT_MIN_SCALE,
        max_scale: float = DEFAULT_MAX_SCALE,
        seed: int = 0,
        mean: tuple[float, float, float] = SYNTHETIC_MEAN,
        std: tuple[float, float, float] = SYNTHETIC_STD,
    ) -> None:
        self.height, self.width = _as_hw(size)
        self.num_samples = _check_options(
            split, num_samples, num_classes, max_shapes, min_scale, max_scale, seed
        )
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ConfigError(
                f"synthetic: mean and std need 3 values each with std > 0, got mean={mean!r}, "
                f"std={std!r}."
            )
        self.split = split
        self.num_classes = num_classes
        self.max_shapes = max_shapes
        self.min_scale = float(min_scale)
        self.max_scale = float(max_scale)
        self.seed = seed
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        h, w = self.height, self.width
        self._ys = np.arange(h, dtype=np.float32)
        self._xs = np.arange(w, dtype=np.float32)
        self._row_lerp = _lerp_table(h, _VALUE_NOISE_CELLS)
        self._col_lerp = _lerp_table(w, _VALUE_NOISE_CELLS)
        # Normalisation x' = (x / 255 - mean) / std as one multiply-add per channel.
        self._norm_scale = np.array([1.0 / (255.0 * sd) for sd in self.std], np.float32)[
            :, None, None
        ]
        self._norm_shift = np.array(
            [-m / sd for m, sd in zip(self.mean, self.std, strict=True)], np.float32
        )[:, None, None]

    def __len__(self) -> int:
        """Number of samples in the split."""
        return self.num_samples

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(image, mask)``: float32 ``(3, H, W)`` normalised, and uint8 ``(H, W)``.

        Raises:
            IndexError: If ``index`` is out of range.
        """
        chw, mask, _, _, _ = self._generate(index)
        image = chw.astype(np.float32)  # (3, H, W)
        image *= self._norm_scale
        image += self._norm_shift
        return torch.from_numpy(image), torch.from_numpy(mask)

    def sample(self, index: int) -> ShapesSample:
        """Generate sample ``index`` with everything the generator knows about it.

        Args:
            index: ``0 <= index < len(self)`` (negative indices count from the end).

        Returns:
            A dict with ``image_uint8`` (H, W, 3) uint8 RGB, ``mask`` (H, W) uint8 class ids,
            ``instances`` (H, W) int32 instance ids (0 = background, 1..n visible shapes, in
            painting order) and ``labels``, a list whose entry ``k`` is the class id of instance
            ``k + 1``; also ``full_areas``, the pixel count of each instance before later shapes
            occluded it (at least twice its visible area).

        Raises:
            IndexError: If ``index`` is out of range.
        """
        chw, mask, instances, labels, areas = self._generate(index)
        return ShapesSample(
            image_uint8=np.ascontiguousarray(chw.transpose(1, 2, 0)),
            mask=mask,
            instances=instances,
            labels=labels,
            full_areas=[full for full, _ in areas],
        )

    def _generate(
        self, index: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int], list[list[int]]]:
        """Image (3, H, W) uint8, mask, instance map, labels and areas of sample ``index``.

        Synthesis works channel-first: broadcasting over a trailing axis of 3 is several times
        slower in numpy than over a contiguous (H, W) plane.
        """
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(
                f"synthetic: index must be an int, got {type(index).__name__} ({index!r})."
            )
        n = self.num_samples
        if not -n <= index < n:
            raise IndexError(
                f"synthetic {self.split!r}: index {index} out of range; valid indices are "
                f"0..{n - 1} (or -{n}..-1)."
            )
        index = int(index) % n
        rng = np.random.default_rng([self.seed, _SPLIT_CODES[self.split], index])
        draws = _Scalars(rng)
        bg_color, image = self._background(rng, draws)  # (3, H, W) float32, 0..1
        h, w = self.height, self.width
        mask = np.zeros((h, w), dtype=np.uint8)
        instances = np.zeros((h, w), dtype=np.int32)
        labels: list[int] = []
        areas: list[list[int]] = []  # [full, visible] pixel count per instance
        for _ in range(draws.integer(1, self.max_shapes + 1)):
            self._place_shape(draws, bg_color, image, mask, instances, labels, areas)
        # Uniform noise in [-w, w] from 256 levels (integers draws are exact on every platform),
        # then round half up to uint8: x * 255 + (k - 127.5) * 2w + 0.5.
        levels = rng.integers(0, 256, (3, h, w), dtype=np.uint8)
        image *= np.float32(255.0)
        image += levels.astype(np.float32) * np.float32(2.0 * _PIXEL_NOISE_HALF_WIDTH)
        image += np.float32(0.5 - 255.0 * _PIXEL_NOISE_HALF_WIDTH)
        np.maximum(image, 0.0, out=image)  # cheaper than np.clip's wrapper
        np.minimum(image, 255.0, out=image)
        return image.astype(np.uint8), mask, instances, labels, areas

    def _background(
        self, rng: np.random.Generator, draws: _Scalars
    ) -> tuple[tuple[float, float, float], np.ndarray]:
        """Base colour + per-channel value noise + triangle-wave stripes; float32 (3, H, W)."""
        base = (
            draws.uniform(*_BG_COLOR_RANGE),
            draws.uniform(*_BG_COLOR_RANGE),
            draws.uniform(*_BG_COLOR_RANGE),
        )
        cells = _VALUE_NOISE_CELLS + 1
        lattice = rng.random((3, cells, cells))
        lattice *= 2.0 * _VALUE_NOISE_AMPLITUDE
        lattice += np.array(base)[:, None, None] - _VALUE_NOISE_AMPLITUDE
        lattice = lattice.astype(np.float32)
        r0, r1, wr = self._row_lerp
        c0, c1, wc = self._col_lerp
        rows = lattice[:, r0] + (lattice[:, r1] - lattice[:, r0]) * wr[None, :, None]  # (3, H, c)
        # np.take keeps the result C-contiguous (fancy indexing on the last axis does not, which
        # makes every later broadcast several times slower).
        image = np.take(rows, c0, axis=2)  # (3, H, W)
        image += (np.take(rows, c1, axis=2) - image) * wc
        dx, dy = draws.unit_vector()
        cycles = draws.uniform(*_STRIPE_CYCLES)
        amplitude = draws.uniform(0.0, _STRIPE_MAX_AMPLITUDE)
        phase = draws.uniform(0.0, 1.0)
        freq = cycles / min(self.height, self.width)
        t = (self._xs * np.float32(dx * freq))[None, :] + (
            self._ys * np.float32(dy * freq) + np.float32(phase)
        )[:, None]  # (H, W), in stripe periods
        t -= np.floor(t)
        t -= np.float32(0.5)
        stripes = np.abs(t)  # triangle wave in 0..0.5
        stripes -= np.float32(0.25)
        stripes *= np.float32(4.0 * amplitude)
        image += stripes
        return base, image

    @staticmethod
    def _shape_color(draws: _Scalars, bg: tuple[float, float, float]) -> np.ndarray:
        """A colour from the class-independent distribution, contrasting with the background.

        Uniform in the RGB cube, re-drawn while closer than ``_MIN_CONTRAST`` to the background's
        base colour (after ``_COLOR_TRIES`` draws the most distant one is kept). Nothing here
        depends on the shape's class.
        """
        best, best_dist = (0.0, 0.0, 0.0), -1.0
        for _ in range(_COLOR_TRIES):
            c = (
                draws.uniform(*_SHAPE_COLOR_RANGE),
                draws.uniform(*_SHAPE_COLOR_RANGE),
                draws.uniform(*_SHAPE_COLOR_RANGE),
            )
            d0, d1, d2 = c[0] - bg[0], c[1] - bg[1], c[2] - bg[2]
            dist = math.sqrt(d0 * d0 + d1 * d1 + d2 * d2)  # no ``**``: it calls libm pow
            if dist > best_dist:
                best, best_dist = c, dist
            if dist >= _MIN_CONTRAST:
                break
        return np.array(best, dtype=np.float32)

    def _place_shape(
        self,
        draws: _Scalars,
        bg_color: tuple[float, float, float],
        image: np.ndarray,
        mask: np.ndarray,
        instances: np.ndarray,
        labels: list[int],
        areas: list[list[int]],
    ) -> None:
        """Try to paint one random shape, updating all arguments in place.

        ``areas`` holds each earlier instance's ``[full, visible]`` pixel count. A placement that
        would leave an earlier instance with less than ``1 - _MAX_OCCLUSION`` of its full area
        is re-drawn; after ``_PLACEMENT_TRIES`` failures the shape is dropped.
        """
        h, w = self.height, self.width
        cls = draws.integer(1, self.num_classes)
        radius = 0.5 * draws.uniform(self.min_scale, self.max_scale) * min(h, w)
        aux = draws.uniform(*_AUX_RANGE[cls])
        shade_amp = draws.uniform(0.0, _SHADING_MAX_AMPLITUDE)
        color = self._shape_color(draws, bg_color)[:, None, None]  # (3, 1, 1)
        gx, gy = draws.unit_vector()
        # Linear shading across the shape: +-shade_amp at the bounding circle.
        shade_x = np.float32(gx * shade_amp / radius)
        shade_y = np.float32(gy * shade_amp / radius)
        for _ in range(_PLACEMENT_TRIES):
            # Centre such that the bounding circle lies inside the image (pixel centres are at
            # integer coordinates, so the image spans -0.5..W-0.5).
            cx = draws.uniform(radius - 0.5, w - radius - 0.5)
            cy = draws.uniform(radius - 0.5, h - radius - 0.5)
            cs, sn = draws.unit_vector()
            x0, x1 = max(0, int(cx - radius) - 2), min(w, int(cx + radius) + 3)
            y0, y1 = max(0, int(cy - radius) - 2), min(h, int(cy + radius) + 3)
            x = (self._xs[x0:x1] - np.float32(cx))[None, :]  # (1, w')
            y = (self._ys[y0:y1] - np.float32(cy))[:, None]  # (h', 1)
            if cls in (1, 4):  # rotation invariant
                u, v = x, y
            else:
                u = x * np.float32(cs) + y * np.float32(sn)  # (h', w')
                v = y * np.float32(cs) - x * np.float32(sn)
            sd = _sdf(cls, u, v, radius, aux)  # (h', w')
            inside = sd < 0.0
            area = int(np.count_nonzero(inside))
            if area == 0:  # a shape thinner than a pixel (tiny min_scale) has no label to give
                continue
            inst_crop = instances[y0:y1, x0:x1]
            if labels:
                covered = np.bincount(inst_crop[inside], minlength=len(labels) + 1).tolist()
                if any(
                    vis - cov < (1.0 - _MAX_OCCLUSION) * full
                    for (full, vis), cov in zip(areas, covered[1:], strict=True)
                ):
                    continue
                for entry, cov in zip(areas, covered[1:], strict=True):
                    entry[1] -= cov
            alpha = np.float32(0.5) - sd  # (h', w'): coverage of a 1-pixel-wide edge ramp
            np.maximum(alpha, 0.0, out=alpha)
            np.minimum(alpha, 1.0, out=alpha)
            shade = x * shade_x + y * shade_y  # (h', w')
            crop = image[:, y0:y1, x0:x1]  # (3, h', w') view
            crop += ((color + shade) - crop) * alpha
            labels.append(cls)
            areas.append([area, area])
            mask[y0:y1, x0:x1][inside] = cls
            inst_crop[inside] = len(labels)
            return


def measure_channel_stats(
    dataset: SyntheticShapes, count: int
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Exact per-channel mean and std (0..1 scale) of the first ``count`` images of ``dataset``.

    Uses integer sums of the uint8 pixels, so the result does not depend on summation order.

    Args:
        dataset: The dataset to measure.
        count: Number of images (``1 <= count <= len(dataset)``).

    Returns:
        ``(mean, std)``, each a per-channel RGB triple.

    Raises:
        ConfigError: If ``count`` is out of range.
    """
    if not 1 <= count <= len(dataset):
        raise ConfigError(
            f"measure_channel_stats: count must be in 1..{len(dataset)}, got {count}."
        )
    total = np.zeros(3, dtype=np.int64)
    total_sq = np.zeros(3, dtype=np.int64)
    pixels = 0
    for i in range(count):
        img = dataset.sample(i)["image_uint8"].reshape(-1, 3).astype(np.int64)
        total += img.sum(axis=0)
        total_sq += (img * img).sum(axis=0)
        pixels += img.shape[0]
    mean = total / (pixels * 255.0)
    var = total_sq / (pixels * 255.0 * 255.0) - mean * mean
    m = tuple(float(x) for x in mean)
    s = tuple(float(x) for x in np.sqrt(var))
    return (m[0], m[1], m[2]), (s[0], s[1], s[2])


@register_dataset(
    "synthetic",
    "Built-in procedural shapes: 7 shape classes + background on textured noise, generated on "
    "the fly (no files, deterministic per split and index).",
)
def synthetic(
    *,
    split: str,
    root: str | None = None,
    size: int | tuple[int, int] = 128,
    num_samples: int | None = None,
    num_classes: int = len(CLASS_NAMES),
    max_shapes: int = 3,
    min_scale: float = DEFAULT_MIN_SCALE,
    max_scale: float = DEFAULT_MAX_SCALE,
    seed: int = 0,
) -> tuple[SyntheticShapes, DatasetInfo]:
    """Build one split of the synthetic shapes dataset.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        root: Ignored (the dataset is generated, not read).
        size: Image size, int or ``(H, W)``.
        num_samples: Images in this split (None: 2000 train, 200 val, 200 test).
        num_classes: 2..8; background plus the first ``num_classes - 1`` shapes.
        max_shapes: Maximum shapes per image.
        min_scale: Smallest shape diameter as a fraction of ``min(H, W)``.
        max_scale: Largest shape diameter as a fraction of ``min(H, W)``.
        seed: Base seed shared by the splits (each split also mixes in its own code).

    Returns:
        ``(dataset, info)``.

    Raises:
        ConfigError: On an unknown split or an out-of-range option.
    """
    del root  # nothing to read
    dataset = SyntheticShapes(
        split,
        size=size,
        num_samples=num_samples,
        num_classes=num_classes,
        max_shapes=max_shapes,
        min_scale=min_scale,
        max_scale=max_scale,
        seed=seed,
    )
    info = DatasetInfo(
        name="synthetic",
        title="Synthetic shapes",
        num_classes=num_classes,
        class_names=CLASS_NAMES[:num_classes],
        palette=PALETTE[:num_classes],
        ignore_index=255,
        mean=SYNTHETIC_MEAN,
        std=SYNTHETIC_STD,
        splits=SPLITS,
        eval_resolution=(dataset.height, dataset.width),
        citation="Procedurally generated by semseg-bench (bench/data/synthetic.py); no data files.",
    )
    return dataset, info
