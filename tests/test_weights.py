"""Tests for published weights: the declaration (architectures._weights) and bench.weights
(search path, sha256, loading through a key conversion, the authors' pre- and post-processing),
and ``eval --weights`` / ``--checkpoint --like`` end to end on the synthetic set.

Every expected value is computed here independently of the code under test (the authors'
preprocessing written out directly, hashes with hashlib).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import architectures
from architectures import (
    ArchInfo,
    Preprocess,
    PublishedMetric,
    WeightsInfo,
    WeightsProtocol,
    WeightsSource,
    register,
    register_weights,
    strip_module_prefix,
)
from bench.data import build_dataset
from bench.errors import CheckpointError, MissingFileError
from bench.weights import (
    ENV_VAR,
    PublishedModel,
    load_published,
    locate,
    scoring_for,
    search_path,
)
from tests.factories import run_cli

SOURCE = WeightsSource("someone/net", "0123abc", "ckpt/net.pth", "MIT")
BGR_255 = Preprocess(
    channel_order="BGR", scale=255.0, mean=(70.0, 80.0, 90.0), std=(40.0, 45.0, 50.0)
)


def _info(**fields: object) -> WeightsInfo:
    base: dict[str, object] = {
        "name": "tmp_wnet.demo",
        "file": "demo/tmp_wnet.pth",
        "sha256": "0" * 64,
        "source": SOURCE,
        "dataset": "synthetic",
        "class_names": ("a", "b", "c"),
        "channels": (0, 1, 2),
    }
    base.update(fields)
    return WeightsInfo(**base)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the declaration


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"name": "no_tag"}, "WeightsInfo.name must be '<arch>.<tag>'"),
        ({"sha256": "ABC"}, "sha256 must be 64 lower-case hex digits; got 'ABC'"),
        ({"channels": (0, 1)}, "channels must be a class id in 0..2 for each class exactly once"),
        ({"channels": (0, 1, 1, None)}, "channels must be a class id in 0..2"),
        ({"preprocess": Preprocess(std=(1.0, 0.0, 1.0))}, "preprocess must be a positive scale"),
    ],
)
def test_bad_declarations_fail_where_they_are_made(fields: dict, expected: str) -> None:
    with pytest.raises(architectures.ArchitectureError, match=expected.replace("(", r"\(")):
        _info(**fields)


AUTHORS = WeightsProtocol(resolution=(6, 8), labels="resized", void="class")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"channels": (0, 1, 2, None), "void_channel": 1}, "void_channel must be the index of a None channel in 0..3; got 1"),
        ({"channels": (0, 1, 2, None), "void_channel": 4}, "void_channel must be the index of a None channel"),
        ({"extra_channels": "keep"}, "extra_channels must be 'drop' or 'miss'"),
        ({"protocol": WeightsProtocol(void="class")}, "protocol must be the standard scoring"),
        ({"channels": (0, 1, 2, None), "authors_protocol": AUTHORS}, "authors_protocol must be a protocol that scores void only with a void_channel"),
        ({"authors_protocol": WeightsProtocol(labels="resized")}, "authors_protocol must be a resolution to resize the labels to"),
        ({"authors_protocol": WeightsProtocol()}, "authors_protocol must be a protocol other than `protocol`"),
    ],
)  # fmt: skip
def test_bad_scoring_declarations_fail_where_they_are_made(fields: dict, expected: str) -> None:
    with pytest.raises(architectures.ArchitectureError, match=re.escape(expected)):
        _info(**fields)


def test_protocols_are_named_standard_and_authors() -> None:
    info = _info(channels=(0, 1, 2, None), void_channel=3, authors_protocol=AUTHORS)
    assert info.protocols() == {"standard": WeightsProtocol(), "authors": AUTHORS}
    assert info.protocol_named("authors") is AUTHORS
    with pytest.raises(
        architectures.ArchitectureError, match="declare the protocols \\['standard'\\]"
    ):
        _info().protocol_named("authors")


def test_arch_and_outputs_come_from_the_declaration() -> None:
    info = _info(channels=(2, None, 0, 1))
    assert info.arch == "tmp_wnet" and info.num_outputs == 4


def test_weights_need_their_architecture_registered_first(restore_registry: None) -> None:
    with pytest.raises(architectures.ArchitectureError, match="Unknown architecture 'tmp_wnet'"):
        register_weights(_info())


def test_unknown_weights_name_lists_the_declared_ones() -> None:
    with pytest.raises(architectures.ArchitectureError) as exc:
        architectures.get_weights("espnet.nope")
    assert "Unknown weights 'espnet.nope'. Declared weights: " in str(exc.value)
    assert "list weights" in str(exc.value)


def test_strip_module_prefix() -> None:
    t = torch.zeros(1)
    assert list(strip_module_prefix({"module.a.w": t, "b.w": t})) == ["a.w", "b.w"]


# --------------------------------------------------------------------------- finding the file


def test_search_path_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    folders = search_path(tmp_path / "cli")
    assert folders[:2] == [tmp_path / "cli", tmp_path / "env"]
    assert folders[2].parts[-2:] == ("shared", "checkpoints")
    assert folders[3] == tmp_path / "hub" / "checkpoints"


def test_missing_file_names_every_folder_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(MissingFileError) as exc:
        locate(_info(), tmp_path)
    message = str(exc.value)
    assert message.startswith(
        f"Weights 'tmp_wnet.demo': file demo/tmp_wnet.pth (sha256 {'0' * 64}) was not found."
    )
    assert f"  {tmp_path / 'demo/tmp_wnet.pth'}\n" in message
    assert "from someone/net at commit 0123abc, path ckpt/net.pth" in message
    assert "Nothing is downloaded." in message


def test_wrong_hash_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "demo" / "tmp_wnet.pth"
    path.parent.mkdir()
    path.write_bytes(b"not the declared file")
    found = hashlib.sha256(b"not the declared file").hexdigest()
    with pytest.raises(CheckpointError, match=f"has sha256 {found}, expected {'0' * 64}"):
        locate(_info(), tmp_path)
    assert locate(_info(sha256=found), tmp_path) == path


# --------------------------------------------------------------------------- the adapter


class Capture(nn.Module):
    """Returns the input's first channels as logits (one per output), keeping the input."""

    def __init__(self, outputs: int) -> None:
        super().__init__()
        self.outputs = outputs
        self.seen: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        self.seen = x
        reps = -(-self.outputs // 3)
        return [
            x.repeat(1, reps, 1, 1)[:, : self.outputs]
            * torch.arange(1, self.outputs + 1).view(1, -1, 1, 1)
        ]


def test_input_is_converted_to_the_authors_preprocessing() -> None:
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    raw = torch.randint(0, 256, (2, 3, 5, 7), generator=torch.Generator().manual_seed(0))
    harness = (raw / 255.0 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(
        1, 3, 1, 1
    )
    inner = Capture(3)
    PublishedModel(inner, _info(preprocess=BGR_255), mean, std)(harness)
    # The authors: BGR order, 0-255 values, their mean/std per BGR channel.
    bgr = raw.flip(1).float()
    expected = (bgr - torch.tensor([70.0, 80.0, 90.0]).view(1, 3, 1, 1)) / torch.tensor(
        [40.0, 45.0, 50.0]
    ).view(1, 3, 1, 1)
    assert inner.seen is not None
    torch.testing.assert_close(inner.seen, expected, rtol=0, atol=2e-5)


def test_output_channels_are_mapped_to_the_dataset_classes() -> None:
    # Output channel 0 scores class 2, channel 1 is void (dropped), 2 -> class 0, 3 -> class 1.
    info = _info(channels=(2, None, 0, 1))
    x = torch.randn(1, 3, 4, 4)
    inner = Capture(4)
    logits = inner(x)[0]
    out = PublishedModel(Capture(4), info, (0.0,) * 3, (1.0,) * 3)(x)
    assert out.shape == (1, 3, 4, 4)
    for cls, channel in ((0, 2), (1, 3), (2, 0)):
        torch.testing.assert_close(out[:, cls], logits[:, channel])


def test_non_class_channels_counted_as_misses_become_one_no_class_channel() -> None:
    # Channels 1 and 4 are not classes; with "miss" their maximum is a last, "no class" channel.
    info = _info(channels=(2, None, 0, 1, None), extra_channels="miss")
    x = torch.randn(1, 3, 4, 4)
    logits = Capture(5)(x)[0]
    out = PublishedModel(Capture(5), info, (0.0,) * 3, (1.0,) * 3)(x)
    assert out.shape == (1, 4, 4, 4)
    for cls, channel in ((0, 2), (1, 3), (2, 0)):
        torch.testing.assert_close(out[:, cls], logits[:, channel])
    torch.testing.assert_close(out[:, 3], torch.maximum(logits[:, 1], logits[:, 4]))
    scoring = scoring_for(info, info.protocol, ignore_index=255)
    assert scoring.no_class_channel and scoring.class_names == ("a", "b", "c")


def test_void_scored_as_a_class_keeps_its_channel_last() -> None:
    info = _info(channels=(None, 0, 1, 2), void_channel=0, authors_protocol=AUTHORS)
    x = torch.randn(1, 3, 6, 8)
    logits = Capture(4)(x)[0]
    out = PublishedModel(Capture(4), info, (0.0,) * 3, (1.0,) * 3, AUTHORS)(x)
    torch.testing.assert_close(out, logits[:, [1, 2, 3, 0]])
    scoring = scoring_for(info, AUTHORS, ignore_index=255)
    assert scoring.class_names == ("a", "b", "c", "void") and scoring.num_classes == 4
    assert not scoring.no_class_channel


def test_authors_label_resize_blends_ids_like_opencv() -> None:
    """A 1x2 label [class 0, void] made 1x4. Void is id 3 (K) as in the label files; a linear
    resize with half-pixel centres samples x = 0, 0.25, 0.75, 1 of the source: ids 0, 0.75,
    2.25, 3, rounded to 0, 1, 2, 3. Two of four pixels get a class that is in neither source
    pixel: the artefact of the authors' resize, reproduced as declared."""
    mask = torch.tensor([[0, 255]])
    resized = WeightsProtocol(resolution=(1, 4), labels="resized", label_interpolation="bilinear")
    info = _info(channels=(0, 1, 2, None), void_channel=3)
    void_class = dataclasses.replace(resized, void="class")
    assert scoring_for(info, void_class, ignore_index=255).labels(mask).tolist() == [[0, 1, 2, 3]]
    # Void ignored: the blended ids stay, void pixels stay ignored.
    assert scoring_for(info, resized, ignore_index=255).labels(mask).tolist() == [[0, 1, 2, 255]]
    nearest = dataclasses.replace(void_class, label_interpolation="nearest")
    assert scoring_for(info, nearest, ignore_index=255).labels(mask).tolist() == [[0, 0, 3, 3]]


def test_scored_labels_resize_the_image_and_drop_the_datasets_resizing_protocol() -> None:
    """A file dataset's inference protocol resizes images to its eval size; a protocol that
    resizes the labels gets its images at that size here, and that protocol must not resize
    them back (the suite then scored ENet's authors' protocol at 17.1 instead of 15.8)."""
    from bench.data.transforms import EvalProtocol
    from bench.weights import ScoredLabels

    class Folder(torch.utils.data.Dataset):
        protocol = EvalProtocol(size=(6, 10))

        def __len__(self) -> int:
            return 1

        def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.ones(3, 6, 10), torch.zeros(6, 10, dtype=torch.long)

    info = _info(channels=(0, 1, 2, None), void_channel=3)
    resized = scoring_for(info, AUTHORS, ignore_index=255)
    image, mask = ScoredLabels(Folder(), resized)[0]
    assert image.shape == (3, 6, 8) and mask.shape == (6, 8)
    assert ScoredLabels(Folder(), resized).protocol is None
    as_loaded = scoring_for(info, WeightsProtocol(), ignore_index=255)
    assert ScoredLabels(Folder(), as_loaded).protocol is Folder.protocol


@pytest.mark.parametrize("align_corners", [True, False])
def test_protocol_resolution_and_logit_resize(align_corners: bool) -> None:
    info = _info(protocol=WeightsProtocol(resolution=(4, 6), align_corners=align_corners))
    x = torch.randn(1, 3, 8, 12)
    inner = Capture(3)
    out = PublishedModel(inner, info, (0.0,) * 3, (1.0,) * 3)(x)
    assert inner.seen is not None and inner.seen.shape[-2:] == (4, 6)
    small = F.interpolate(x, size=(4, 6), mode="bilinear", align_corners=align_corners)
    expected = F.interpolate(
        small * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1),
        size=(8, 12),
        mode="bilinear",
        align_corners=align_corners,
    )
    torch.testing.assert_close(out, expected)


# --------------------------------------------------------------------------- loading


class WNet(nn.Module):
    def __init__(self, num_classes: int, width: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.bn(self.conv(x))))


@pytest.fixture
def published(restore_registry: None, tmp_path: Path) -> tuple[WeightsInfo, Path, nn.Module]:
    """``tmp_wnet`` registered, and a published-style file of it: 9 outputs (8 synthetic
    classes + void), width 6 (a builder option), keys under ``module.``, no
    ``num_batches_tracked`` (an old file), BGR 0-255 preprocessing."""

    @register(
        ArchInfo(
            name="tmp_wnet",
            title="W",
            paper="1505.04597",
            year=2015,
            family="test",
            input_divisor=1,
        )
    )
    def tmp_wnet(*, num_classes: int, width: int = 4) -> nn.Module:
        return WNet(num_classes, width)

    torch.manual_seed(3)
    net = WNet(9, width=6).eval()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-1, 1)
    state = {
        f"module.{k}": v
        for k, v in net.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    path = tmp_path / "weights" / "demo" / "tmp_wnet.pth"
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    _, data = build_dataset("synthetic", split="val", size=16, num_samples=1)
    info = register_weights(
        _info(
            sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
            class_names=data.class_names,
            channels=(*range(8), None),
            preprocess=BGR_255,
            builder_options={"width": 6},
            convert_keys=strip_module_prefix,
            published=(PublishedMetric("miou", 12.3, "val", "a made-up figure for the test"),),
        )
    )
    return info, path, net


def test_load_published_builds_converts_and_loads(published, tmp_path: Path) -> None:
    info, path, net = published
    loaded = load_published(
        info, dataset_mean=(0.5,) * 3, dataset_std=(0.25,) * 3, weights_dir=tmp_path / "weights"
    )
    assert loaded.path == path and loaded.sha256 == info.sha256
    inner = loaded.model.model.model  # PublishedModel -> PadCrop -> WNet
    got = inner.state_dict()
    assert all(
        torch.equal(got[k], v) for k, v in net.state_dict().items() if "num_batches" not in k
    )
    x = torch.randn(1, 3, 8, 8)
    raw = (x * 0.25 + 0.5) * 255.0
    authors = (raw.flip(1) - torch.tensor([70.0, 80.0, 90.0]).view(1, 3, 1, 1)) / torch.tensor(
        [40.0, 45.0, 50.0]
    ).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), net(authors)[:, :8], rtol=1e-4, atol=1e-4)


def test_eval_weights_and_like_give_the_same_numbers(published, tmp_path: Path) -> None:
    info, path, _ = published
    plugin_free = ["--dataset", "synthetic", "--split", "val", "--batch-size", "50", "-q"]
    code, out, err = run_cli(
        [
            "eval",
            "--arch",
            "tmp_wnet",
            "--weights",
            info.name,
            "--weights-dir",
            tmp_path / "weights",
            "--json",
            tmp_path / "w.json",
            *plugin_free,
        ]
    )
    assert code == 0, err
    by_weights = json.loads((tmp_path / "w.json").read_text())
    assert by_weights["weights"] == info.name and by_weights["checkpoint_sha256"] == info.sha256
    assert (
        "weights tmp_wnet.demo (standard protocol: BGR, 0-255 values, mean [70.0, 80.0, 90.0], "
        "std [40.0, 45.0, 50.0]; whole image; logits resized bilinear align_corners=False;"
        in out.splitlines()[0]
    )
    assert (
        "1 output channel(s) dropped before the argmax; labels as loaded; void ignored)"
        in (out.splitlines()[0])
    )
    copy = tmp_path / "mine.pt"
    shutil.copy(path, copy)
    code, out, err = run_cli(
        [
            "eval",
            "--arch",
            "tmp_wnet",
            "--checkpoint",
            copy,
            "--like",
            info.name,
            "--json",
            tmp_path / "l.json",
            *plugin_free,
        ]
    )
    assert code == 0, err
    by_like = json.loads((tmp_path / "l.json").read_text())
    assert by_like["metrics"] == by_weights["metrics"]
    assert by_like["checkpoint"] == str(copy) and by_like["checkpoint_sha256"] == info.sha256


def test_eval_counts_a_miss_channel_and_scores_the_authors_protocol(
    published, tmp_path: Path
) -> None:
    """The fixture's file declared twice more: its void channel counted as a miss, and an
    authors' protocol (labels resized to 8x8, void a class). The expected numbers come from the
    network run here on the authors' inputs and a NumPy confusion matrix."""
    info, _, net = published
    mine = dataclasses.replace(info, name="tmp_wnet.miss", extra_channels="miss", void_channel=8,
                               authors_protocol=WeightsProtocol(resolution=(8, 8), labels="resized",
                                                                label_interpolation="nearest",
                                                                void="class"))  # fmt: skip
    register_weights(mine)
    data, data_info = build_dataset("synthetic", split="val", size=(16, 16))  # eval's dataset
    images = torch.stack([data[i][0] for i in range(len(data))])
    masks = torch.stack([data[i][1] for i in range(len(data))]).long()
    mean = torch.tensor(data_info.mean).view(1, 3, 1, 1)
    std = torch.tensor(data_info.std).view(1, 3, 1, 1)

    def authors(x: torch.Tensor) -> torch.Tensor:
        raw = (x * std + mean) * 255.0
        bgr = raw.flip(1)
        return (bgr - torch.tensor([70.0, 80.0, 90.0]).view(1, 3, 1, 1)) / torch.tensor(
            [40.0, 45.0, 50.0]
        ).view(1, 3, 1, 1)

    def miou(cm: torch.Tensor, k: int) -> float:
        tp = cm.diag()[:k].double()
        union = cm[:k].sum(1) + cm[:, :k].sum(0)[:k] - tp
        iou = tp / union
        return float(iou[~iou.isnan()].mean())

    def run(*argv: object) -> dict:
        out = tmp_path / "m.json"
        code, _, err = run_cli(["eval", "--arch", "tmp_wnet", "--weights", "tmp_wnet.miss",
                                "--weights-dir", tmp_path / "weights", "--dataset", "synthetic",
                                "--resolution", "16", "16", "--split", "val", "-q", "--json", out,
                                *argv])  # fmt: skip
        assert code == 0, err
        return json.loads(out.read_text())

    with torch.no_grad():
        pred = net(authors(images)).argmax(1)  # 0..7 classes, 8 = void: a miss
    keep = masks != data_info.ignore_index
    cm = torch.bincount(9 * masks[keep] + pred[keep], minlength=81).view(9, 9)
    got = run()
    assert got["metrics"]["miou"] == pytest.approx(miou(cm, 8), abs=1e-12)
    assert len(got["confusion_matrix"]) == 9 and got["confusion_matrix"][8] == [0] * 9
    assert [row[:9] for row in got["confusion_matrix"]] == cm.tolist()

    # Theirs: the image and the labels resized to 8x8 (nearest), void scored as class 8.
    small = F.interpolate(images, size=(8, 8), mode="bilinear", align_corners=False)
    labels = torch.where(masks == data_info.ignore_index, 8, masks)[:, None].float()
    labels = F.interpolate(labels, size=(8, 8), mode="nearest")[:, 0].long()
    with torch.no_grad():
        pred = net(authors(small)).argmax(1)
    cm = torch.bincount(9 * labels.flatten() + pred.flatten(), minlength=81).view(9, 9)
    got = run("--protocol", "authors")
    assert got["protocol"]["resolution"] == [8, 8] and got["protocol"]["name"] == "authors"
    assert got["class_names"][-1] == "void" and len(got["per_class"]) == 9
    assert got["metrics"]["miou"] == pytest.approx(miou(cm, 9), abs=1e-12)
    assert got["confusion_matrix"] == cm.tolist()


def test_a_sliding_protocol_scores_windows(published, tmp_path: Path) -> None:
    """Non-overlapping 8x8 windows over the 16x16 images: the network run on each quarter by
    hand, the quarters put back, argmax and a bincount confusion matrix give the same mIoU."""
    info, _, net = published
    slide = WeightsProtocol(mode="slide", crop=(8, 8), stride=(8, 8), resolution=(16, 16))
    register_weights(dataclasses.replace(info, name="tmp_wnet.slide", authors_protocol=slide))
    for bad in (WeightsProtocol(mode="slide"), dataclasses.replace(slide, stride=(9, 8))):
        with pytest.raises(architectures.ArchitectureError, match="a crop and a stride no larger"):
            _info(authors_protocol=bad)
    data, data_info = build_dataset("synthetic", split="val", size=(16, 16))
    images = torch.stack([data[i][0] for i in range(len(data))])
    masks = torch.stack([data[i][1] for i in range(len(data))]).long()
    raw = (images * torch.tensor(data_info.std).view(1, 3, 1, 1)
           + torch.tensor(data_info.mean).view(1, 3, 1, 1)) * 255.0  # fmt: skip
    x = (raw.flip(1) - torch.tensor([70.0, 80.0, 90.0]).view(1, 3, 1, 1)) / torch.tensor(
        [40.0, 45.0, 50.0]
    ).view(1, 3, 1, 1)
    logits = torch.zeros(len(data), 9, 16, 16)
    with torch.no_grad():
        for i in (0, 8):
            for j in (0, 8):
                logits[:, :, i : i + 8, j : j + 8] = net(x[:, :, i : i + 8, j : j + 8])
    pred = logits[:, :8].argmax(1)
    keep = masks != data_info.ignore_index
    cm = torch.bincount(8 * masks[keep] + pred[keep], minlength=64).view(8, 8).double()
    iou = cm.diag() / (cm.sum(0) + cm.sum(1) - cm.diag())
    out = tmp_path / "s.json"
    code, _, err = run_cli(["eval", "--arch", "tmp_wnet", "--weights", "tmp_wnet.slide",
                            "--weights-dir", tmp_path / "weights", "--dataset", "synthetic",
                            "--resolution", "16", "16", "--protocol", "authors", "-q",
                            "--json", out])  # fmt: skip
    assert code == 0, err
    got = json.loads(out.read_text())
    assert got["metrics"]["miou"] == pytest.approx(float(iou[~iou.isnan()].mean()), abs=1e-12)
    assert "8x8 windows every 8x8" in got["protocol"]["note"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--protocol", "authors", "--weights", "tmp_wnet.demo", "--dataset", "synthetic"],
         "Weights 'tmp_wnet.demo' declare the protocols ['standard']; got 'authors'"),
        (["--protocol", "authors", "--dataset", "synthetic"],
         "--protocol authors scores published weights their authors' way; pass --weights"),
    ],
)  # fmt: skip
def test_eval_protocol_errors(published, argv: list[str], expected: str) -> None:
    code, out, err = run_cli(["eval", "--arch", "tmp_wnet", *argv])
    assert code == 2 and expected in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--like", "tmp_wnet.demo"], "--like tmp_wnet.demo borrows a weights entry's metadata"),
        (
            ["--weights", "tmp_wnet.demo", "--dataset", "camvid"],
            "were trained for 'synthetic', not 'camvid'",
        ),
        (["--weights", "espnet.nope"], "Unknown weights 'espnet.nope'"),
    ],
)
def test_eval_weights_argument_errors(published, argv: list[str], expected: str) -> None:
    code, out, err = run_cli(["eval", "--arch", "tmp_wnet", *argv])
    assert code == 2 and out == ""
    assert expected in err


def test_eval_arch_option_reaches_the_builder(published, tmp_path: Path) -> None:
    argv = ["eval", "--arch", "tmp_wnet", "--dataset", "synthetic", "--resolution", "16", "16"]
    code, _, err = run_cli([*argv, "--arch-option", "width=5", "-q", "--json", tmp_path / "o.json"])
    assert code == 0, err
    assert json.loads((tmp_path / "o.json").read_text())["arch_options"] == {"width": 5}
    code, _, err = run_cli([*argv, "--arch-option", "width"])
    assert code == 2 and "--arch-option 'width': expected KEY=VALUE" in err


def test_eval_with_a_suite_honours_its_arch_options(published, tmp_path: Path) -> None:
    suite = tmp_path / "wide.yaml"
    suite.write_text(
        "description: a suite giving tmp_wnet its width\n"
        "dataset: synthetic\n"
        "dataset_options: {num_samples: 4}\n"
        "resolution: [16, 16]\n"
        "archs: [tmp_wnet]\n"
        "arch_options: {tmp_wnet: {width: 7}}\n"
        "train: {steps: 0}\n"
        "eval: {split: val, batch_size: 4}\n"
        "speed: {enabled: false}\n"
        "complexity: {input_size: [16, 16]}\n"
    )
    out = tmp_path / "s.json"
    code, _, err = run_cli(["eval", "--arch", "tmp_wnet", "--suite", suite, "-q", "--json", out])
    assert code == 0, err
    assert json.loads(out.read_text())["arch_options"] == {"width": 7}
    # The command line wins over the suite.
    code, _, err = run_cli(
        ["eval", "--arch", "tmp_wnet", "--suite", suite, "--arch-option", "width=3", "-q",
         "--json", out]
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out.read_text())["arch_options"] == {"width": 3}


def test_eval_results_dir_writes_a_loaded_record_the_leaderboard_ranks(
    published, tmp_path: Path
) -> None:
    from bench.records import load_records

    info, path, _ = published
    results = tmp_path / "results"
    argv = ["eval", "--arch", "tmp_wnet", "--weights", info.name, "--weights-dir",
            tmp_path / "weights", "--dataset", "synthetic", "--resolution", "16", "16", "-q",
            "--results-dir", results, "--json", tmp_path / "r.json"]  # fmt: skip
    code, out, err = run_cli(argv)
    assert code == 0, err
    scored = json.loads((tmp_path / "r.json").read_text())
    (record,) = load_records(results)
    assert record.kind == "loaded" and record.suite == "published"
    assert record.setting == "val-16x16-published"
    assert record.weights is not None and record.weights.name == info.name
    assert record.weights.sha256 == info.sha256 and record.weights.declared
    assert record.weights.builder_options == {"width": 6}
    assert [(m.metric, m.value) for m in record.weights.published] == [("miou", 12.3)]
    assert record.metrics.miou == scored["metrics"]["miou"]
    assert [list(r) for r in record.metrics.confusion_matrix] == scored["confusion_matrix"]
    assert record.protocol.num_images == scored["num_images"]
    assert record.command.startswith("python run_bench.py eval --arch tmp_wnet --weights")
    assert record.complexity.input_shape == (1, 3, 16, 16)
    board = (results / "LEADERBOARD.md").read_text()
    assert f"W (`{info.name}`)" in board and "| published |" in board.replace("  ", " ")
    # A model trained here gets its record from `run`, not from eval.
    code, _, err = run_cli(["eval", "--arch", "tmp_wnet", "--dataset", "synthetic", "-q",
                            "--resolution", "16", "16", "--results-dir", results])  # fmt: skip
    assert code == 2 and "a model trained here gets its record from `run`" in err


def test_arch_options_are_yaml_scalars() -> None:
    from bench.cli.evaluation import parse_arch_options

    assert parse_arch_options(["p=2", "q = 8", "mode=slide", "flag=true", "lr=0.001"]) == {
        "p": 2,
        "q": 8,
        "mode": "slide",
        "flag": True,
        "lr": 0.001,
    }


# --------------------------------------------------------------------------- real weights

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CAMVID = SHARED / "datasets" / "camvid"
CHECKPOINTS = SHARED / "checkpoints" / "camvid"
needs_camvid_weights = pytest.mark.skipif(
    not (CAMVID.is_dir() and CHECKPOINTS.is_dir()), reason=f"{CAMVID} or {CHECKPOINTS} not found"
)


def _eval_camvid(tmp_path: Path, name: str, *argv: object) -> dict:
    out = tmp_path / f"{name}.json"
    code, _, err = run_cli(
        ["eval", "--dataset", "camvid", "--data-root", CAMVID, "--split", "test", "-q",
         "--batch-size", "4", "--json", out, *argv]
    )  # fmt: skip
    assert code == 0, err
    return json.loads(out.read_text())


@pytest.mark.realdata
@needs_camvid_weights
@pytest.mark.parametrize(
    ("arch", "weights", "published"),
    [("espnet", "espnet.camvid_skd_base", 57.8), ("espnet_c", "espnet_c.camvid_skd_base", 56.7)],
)
def test_published_espnet_reproduces_its_published_miou(
    tmp_path: Path, arch: str, weights: str, published: float
) -> None:
    """Liu et al.'s CamVid students (README / file-name figures), whole 233-image test split:
    within 0.1 point. Measured here (Intel Xeon, AVX512): 57.83 and 56.75, the same figures as
    an independent scratch evaluation of the authors' protocol that read the PNGs directly."""
    got = _eval_camvid(tmp_path, "w", "--arch", arch, "--weights", weights)
    assert got["num_images"] == 233 and got["protocol"]["resolution"] == [360, 480]
    assert abs(100 * got["metrics"]["miou"] - published) <= 0.1
    if arch == "espnet_c":  # a user's copy under another name, evaluated --like the entry
        copy = tmp_path / "my_espnet_c.pth"
        info = architectures.get_weights(weights)
        shutil.copy(CHECKPOINTS / Path(info.file).name, copy)
        like = _eval_camvid(tmp_path, "l", "--arch", arch, "--checkpoint", copy, "--like", weights)
        assert like["metrics"] == got["metrics"]
        assert like["checkpoint_sha256"] == info.sha256


@pytest.mark.realdata
@needs_camvid_weights
def test_enet_ntkhoa95_under_its_authors_protocol_matches_an_independent_evaluation(
    tmp_path: Path,
) -> None:
    """Their protocol (image and label ids resized bilinearly to 512x512, void a 12th class,
    the mean over 12). Independent evaluation (not the harness's loaders, resizes or metrics):
    PIL ``Image.resize((512, 512), BILINEAR)`` of each test PNG (RGB, and the mode-L label,
    which PIL rounds like OpenCV), the network on the 0-255 RGB floats, a NumPy bincount
    confusion matrix over 12 classes: mIoU 15.776, pixel accuracy 53.208 (Intel Xeon, AVX512).
    The README's 58.6 is not reached under either protocol (see README, "ENet")."""
    got = _eval_camvid(tmp_path, "a", "--arch", "enet", "--weights", "enet.camvid_ntkhoa95",
                       "--protocol", "authors")  # fmt: skip
    assert got["protocol"]["resolution"] == [512, 512] and got["num_images"] == 233
    assert len(got["per_class"]) == 12 and got["per_class"][-1]["class"] == "void"
    assert abs(100 * got["metrics"]["miou"] - 15.776) <= 0.05
    assert abs(100 * got["metrics"]["pixel_acc"] - 53.208) <= 0.05


@pytest.mark.realdata
@needs_camvid_weights
def test_every_declared_camvid_file_loads_strictly() -> None:
    """All nine declared files: sha256 verified, keys converted, no missing or unexpected key
    (bench.checkpoint.load_into raises otherwise)."""
    names = [w.name for w in architectures.weights_entries() if w.dataset == "camvid"]
    assert len(names) == 9
    for name in names:
        loaded = load_published(
            architectures.get_weights(name), dataset_mean=(0.5,) * 3, dataset_std=(0.25,) * 3
        )
        assert loaded.sha256 == architectures.get_weights(name).sha256


def _weights_suite(tmp_path: Path, weights: str, speed: str) -> Path:
    """A suite scoring ``weights`` on 4 synthetic images at 16x16, nothing trained."""
    suite = tmp_path / "pub.yaml"
    suite.write_text(
        "dataset: synthetic\n"
        "dataset_options: {num_samples: 4}\n"
        "resolution: [16, 16]\n"
        f"weights: {weights}\n"
        "train: {steps: 0}\n"
        "eval: {split: val, batch_size: 4, num_samples: 0}\n"
        f"speed: {speed}\n"
        "complexity: {input_size: [16, 16]}\n"
    )
    return suite


def test_a_weights_suite_scores_each_and_records_a_failure_without_stopping(
    published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.records import load_records

    info, _, _ = published
    register_weights(_info(name="tmp_wnet.gone", file="gone.pth", class_names=info.class_names,
                           channels=info.channels, builder_options={"width": 6}))  # fmt: skip
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "weights"))
    suite = _weights_suite(tmp_path, "[tmp_wnet.demo, tmp_wnet.gone]", "{enabled: false}")
    results = tmp_path / "results"
    code, out, err = run_cli(["run", "--suite", suite, "--results-dir", results, "-q"])
    assert code == 1, err  # one of the two failed, and said so
    assert "  tmp_wnet.demo: ok\n" in out
    assert "  tmp_wnet.gone: error: Weights 'tmp_wnet.gone': file gone.pth" in out
    records = {r.weights.name: r for r in load_records(results)}
    assert records["tmp_wnet.demo"].status == "ok" and records["tmp_wnet.demo"].kind == "loaded"
    assert (
        records["tmp_wnet.demo"].setting
        == records["tmp_wnet.gone"].setting
        == ("val-16x16-published")
    )
    gone = records["tmp_wnet.gone"]
    assert gone.status == "error" and gone.error.stage == "load"
    assert gone.error.type == "MissingFileError"
    assert (results / "LEADERBOARD.md").is_file()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("weights: [a.b]\ntrain: {steps: 5}\n", "trains nothing; found train.steps: 5"),
        (
            "weights: everything\ntrain: {steps: 0}\n",
            "weights must be 'all' or a list of weights names",
        ),
    ],
)
def test_weights_suite_values_are_checked_when_it_loads(
    tmp_path: Path, text: str, expected: str
) -> None:
    from bench.errors import ConfigError
    from bench.suites import load_suite

    path = tmp_path / "s.yaml"
    path.write_text("dataset: synthetic\nresolution: [16, 16]\n" + text)
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_suite(str(path))


def test_the_camvid_published_suite_names_every_declared_camvid_weights() -> None:
    from bench.suites import load_suite

    suite = load_suite("camvid_published")
    assert suite.weights_names() == [
        w.name for w in architectures.weights_entries() if w.dataset == "camvid"
    ]
    assert len(suite.weights_names()) == 9 and suite.eval.split == "test"


def test_the_camvid_class_list_of_the_weights_is_the_datasets() -> None:
    from architectures._weights import CAMVID_CLASSES
    from bench.data.camvid import CLASS_NAMES

    assert CAMVID_CLASSES == CLASS_NAMES


def test_list_weights_json_names_each_entry_with_its_figure_protocols_and_presence(
    published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info, _, _ = published
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "weights"))
    code, out, err = run_cli(["list", "weights", "--format", "json"])
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows[info.name] == {
        "name": "tmp_wnet.demo",
        "arch": "tmp_wnet",
        "dataset": "synthetic",
        "published": "miou 12.3 (val; a made-up figure for the test)",
        "protocols": "standard",
        "present": True,
        "file": "demo/tmp_wnet.pth",
    }
    assert rows["enet.camvid_ntkhoa95"]["protocols"] == "standard, authors"
    assert rows["espnet.camvid_skd_base"]["protocols"] == "standard"
    assert len([n for n in rows if n.startswith(("espnet.", "espnet_c."))]) == 8


def test_a_weights_suite_times_the_models_and_adds_the_authors_protocol(
    published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.records import load_records

    info, _, _ = published
    authors = WeightsProtocol(resolution=(8, 8), labels="resized", void="class")
    register_weights(dataclasses.replace(info, name="tmp_wnet.two", void_channel=8,
                                         authors_protocol=authors))  # fmt: skip
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "weights"))
    speed = "{enabled: true, warmup: 1, min_iters: 2, max_iters: 3, min_time_s: 0.01, max_batch: 2}"
    suite = _weights_suite(tmp_path, "[tmp_wnet.two]", speed)
    results = tmp_path / "results"
    code, out, err = run_cli(["run", "--suite", suite, "--results-dir", results, "-q"])
    assert code == 0, err
    assert "  tmp_wnet.two: ok\n  tmp_wnet.two (authors protocol): ok\n" in out
    records = {r.setting: r for r in load_records(results)}
    assert set(records) == {"val-16x16-published", "val-8x8-authors"}
    standard, theirs = records["val-16x16-published"], records["val-8x8-authors"]
    # The standard row is timed (cost columns); the authors' row is the same network.
    assert standard.speed is not None and standard.speed.latency_ms.p50 > 0
    assert standard.speed.normalised is not None
    assert theirs.speed is None
    assert list(theirs.metrics.per_class_iou)[-1] == "void"
    assert len(theirs.metrics.per_class_iou) == 9 and len(standard.metrics.per_class_iou) == 8
    assert theirs.protocol.resolution == (8, 8)
    assert theirs.protocol.label_resolution == "resized 8x8 (nearest)"
    assert "authors protocol:" in theirs.weights.preprocess
    assert "void scored as a class" in theirs.weights.preprocess
    # The suite scores as `eval --protocol authors` does (the dataset's own inference protocol,
    # which resizes to the suite's size, must not undo the authors' resize).
    out = tmp_path / "a.json"
    code, _, err = run_cli(["eval", "--arch", "tmp_wnet", "--weights", "tmp_wnet.two", "--suite",
                            suite, "--resolution", "16", "16", "--protocol", "authors", "-q",
                            "--json", out])  # fmt: skip
    assert code == 0, err
    by_eval = json.loads(out.read_text())
    assert by_eval["metrics"]["miou"] == theirs.metrics.miou
    assert by_eval["confusion_matrix"] == [list(r) for r in theirs.metrics.confusion_matrix]
