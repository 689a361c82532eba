"""Tests for bench.data.transforms: training augmentation (v2 + Mask) and the eval protocol."""

from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors

from bench.data.transforms import (
    EvalProtocol,
    RandomScale,
    TrainAugment,
    eval_transform,
    train_transform,
)
from bench.errors import ConfigError

MEAN = (0.5, 0.25, 0.125)
STD = (0.25, 0.5, 0.2)
NO_JITTER = {"brightness": 0.0, "contrast": 0.0, "saturation": 0.0, "hue": 0.0}


def _pair(
    h: int, w: int, values: tuple[int, ...] = (3, 7)
) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, len(values), (h, w), generator=g)
    mask = torch.tensor(values, dtype=torch.uint8)[idx]  # (H, W)
    # The image encodes the label in its red channel so geometric consistency can be checked.
    image = torch.stack([mask * 10, torch.full_like(mask, 50), torch.full_like(mask, 200)])
    return tv_tensors.Image(image), tv_tensors.Mask(mask)


def _denorm_red(image: torch.Tensor) -> torch.Tensor:
    return (image[0] * STD[0] + MEAN[0]) * 255.0


def test_labels_are_resized_with_nearest_neighbour_only():
    aug = TrainAugment(crop=(24, 24), scale_range=(0.37, 1.93), **NO_JITTER)
    t = train_transform(aug, MEAN, STD)
    image, mask = _pair(20, 30, values=(3, 7))
    seen: set[int] = set()
    for seed in range(30):
        torch.manual_seed(seed)
        _, out = t(image, mask)
        seen |= set(out.unique().tolist())
    # Bilinear resizing of a {3, 7} label would create 4, 5 and 6; padding adds only 255.
    assert seen == {3, 7, 255}


def test_crop_size_and_ignore_padding():
    aug = TrainAugment(crop=(8, 10), scale_range=(1.0, 1.0), flip=False, **NO_JITTER)
    t = train_transform(aug, MEAN, STD)
    image, mask = _pair(4, 6)
    torch.manual_seed(0)
    img, out = t(image, mask)
    assert img.shape == (3, 8, 10) and out.shape == (8, 10)
    assert img.dtype == torch.float32 and out.dtype == torch.uint8
    real = out != 255
    assert int(real.sum()) == 4 * 6  # every label pixel kept once, the rest is ignore padding
    # Padded image pixels are 0 before normalisation: (0 - mean) / std per channel.
    for c in range(3):
        assert torch.allclose(img[c][~real], torch.tensor(-MEAN[c] / STD[c]))


def test_image_and_label_get_the_same_geometry():
    aug = TrainAugment(crop=(16, 16), scale_range=(1.0, 1.0), **NO_JITTER)
    t = train_transform(aug, MEAN, STD)
    image, mask = _pair(20, 24)
    for seed in range(12):  # random crop positions and flips
        torch.manual_seed(seed)
        img, out = t(image, mask)
        assert torch.allclose(_denorm_red(img), out.float() * 10, atol=1e-3)


def test_flip_happens_about_half_the_time_and_stays_consistent():
    aug = TrainAugment(crop=(6, 8), scale_range=(1.0, 1.0), **NO_JITTER)
    t = train_transform(aug, MEAN, STD)
    image, mask = _pair(6, 8)  # crop = full size: only the flip changes anything
    flipped = 0
    for seed in range(40):
        torch.manual_seed(seed)
        img, out = t(image, mask)
        if torch.equal(out, mask.flip(-1).as_subclass(torch.Tensor)):
            flipped += 1
        else:
            assert torch.equal(out, mask.as_subclass(torch.Tensor))
        assert torch.allclose(_denorm_red(img), out.float() * 10, atol=1e-3)
    assert 8 <= flipped <= 32


def test_jitter_changes_the_image_only():
    aug = TrainAugment(
        crop=(6, 8),
        scale_range=(1.0, 1.0),
        flip=False,
        brightness=0.5,
        contrast=0.5,
        saturation=0.5,
    )
    t = train_transform(aug, MEAN, STD)
    image, mask = _pair(6, 8)
    torch.manual_seed(1)
    img, out = t(image, mask)
    plain = eval_transform(MEAN, STD)(image, mask)[0]
    assert torch.equal(out, mask.as_subclass(torch.Tensor))
    assert not torch.allclose(img, plain)


def test_random_scale_factor_range_and_base_box():
    image, mask = _pair(40, 60)
    sizes = []
    for seed in range(50):
        torch.manual_seed(seed)
        img, out = RandomScale((0.5, 2.0))(image, mask)
        assert img.shape[-2:] == out.shape[-2:]
        sizes.append(img.shape[-2:])
    hs = [s[0] for s in sizes]
    assert min(hs) >= 20 and max(hs) <= 80 and max(hs) - min(hs) > 30
    for h, w in sizes:  # aspect ratio kept (up to rounding)
        assert abs(w / h - 1.5) < 0.05
    # With a base box the image is first fitted into it: 40x60 into 10x100 -> factor 0.25.
    torch.manual_seed(0)
    img, _ = RandomScale((1.0, 1.0), base=(10, 100))(image, mask)
    assert tuple(img.shape[-2:]) == (10, 15)


def test_train_transform_is_deterministic_under_the_torch_seed():
    aug = TrainAugment(crop=(12, 12))
    t = train_transform(aug, MEAN, STD)
    image, mask = _pair(20, 20)
    torch.manual_seed(5)
    a = t(image, mask)
    torch.manual_seed(5)
    b = t(image, mask)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_eval_transform_normalises_exactly_and_keeps_the_label():
    image, mask = _pair(5, 7)
    img, out = eval_transform(MEAN, STD)(image, mask)
    expected = (image.float() / 255 - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[
        :, None, None
    ]
    assert torch.allclose(img, expected, atol=1e-6)
    assert torch.equal(out, mask)


def test_train_augment_validation_and_dict():
    with pytest.raises(ConfigError, match="scale_range"):
        TrainAugment(crop=8, scale_range=(2.0, 0.5))
    with pytest.raises(ConfigError, match="crop"):
        TrainAugment(crop=(8, 0))
    with pytest.raises(ConfigError, match="hue"):
        TrainAugment(crop=8, hue=0.7)
    d = TrainAugment(crop=[8, 12], scale_base=[360, 480]).to_dict()
    assert d["crop"] == [8, 12] and d["scale_base"] == [360, 480]
    assert d["label_interpolation"] == "nearest" and d["label_pad_value"] == 255
    assert d["scale_range"] == [0.5, 2.0]


def test_eval_protocol_validation():
    with pytest.raises(ConfigError, match="needs crop and stride"):
        EvalProtocol(mode="slide")
    with pytest.raises(ConfigError, match="exceeds crop"):
        EvalProtocol(mode="slide", crop=(8, 8), stride=(9, 4))
    with pytest.raises(ConfigError, match="not both"):
        EvalProtocol(size=(8, 8), short_side=4)
    with pytest.raises(ConfigError, match="only apply to mode 'slide'"):
        EvalProtocol(crop=(8, 8))
    with pytest.raises(ConfigError, match="mode must be"):
        EvalProtocol(mode="tiles")
    with pytest.raises(ConfigError, match="scales"):
        EvalProtocol(scales=(1.0, 0.0))
    with pytest.raises(ConfigError, match="unknown key"):
        EvalProtocol.from_dict({"mode": "whole", "flips": True})


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (
            lambda: TrainAugment(crop=8, scale_range="big"),
            "augment scale_range must satisfy 0 < min <= max; got 'big'",
        ),
        (
            lambda: TrainAugment(crop=8, scale_range=(0.5, 1.0, 2.0)),
            "augment scale_range must satisfy 0 < min <= max; got (0.5, 1.0, 2.0)",
        ),
        (
            lambda: EvalProtocol(scales=("x",)),
            "protocol scales must be positive factors; got ('x',)",
        ),
        (lambda: EvalProtocol(scales=2.0), "protocol scales must be positive factors; got 2.0"),
        (lambda: TrainAugment(crop=8, brightness="x"), "augment brightness must be a number"),
        (lambda: TrainAugment(crop=8, hue=True), "augment hue must be a number; got True."),
    ],
)
def test_malformed_ranges_are_config_errors_not_python_errors(build, expected):
    # Values of the wrong shape or type come from suite files too: same message as a bad range.
    with pytest.raises(ConfigError) as exc:
        build()
    assert str(exc.value).startswith(expected)


def test_eval_protocol_dict_round_trip_and_replace():
    p = EvalProtocol(mode="slide", crop=[769, 769], stride=[513, 513], scales=[0.5, 1.0], flip=True)
    d = p.to_dict()
    assert d == {
        "mode": "slide",
        "resolution": None,
        "short_side": None,
        "crop": [769, 769],
        "stride": [513, 513],
        "scales": [0.5, 1.0],
        "flip": True,
        "label_resolution": "native",
    }
    assert EvalProtocol.from_dict(d) == p
    assert p.views == 4
    q = EvalProtocol(short_side=512).replace({"size": [256, 512], "short_side": None})
    assert q.size == (256, 512) and q.short_side is None
    assert EvalProtocol().replace(None) == EvalProtocol()
