"""Tests for bench.data.registry: one table behind every view of the datasets, and its errors."""

from __future__ import annotations

import dataclasses

import pytest

from bench.data import registry
from bench.data.file_dataset import SegmentationFiles, register_file_dataset
from bench.data.fixtures import FIXTURE_COUNTS, write_fixture
from bench.data.synthetic import synthetic
from bench.errors import BenchError, ConfigError
from tests.factories import BUILT_IN_DATASETS, FILE_DATASETS


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, registry.DatasetEntry]:
    """A copy of the registry that the test may add to; the real one is restored afterwards."""
    table = dict(registry._REGISTRY)
    monkeypatch.setattr(registry, "_REGISTRY", table)
    return table


def _dummy_factory(*, split: str, root: str | None = None, size: int = 8) -> tuple[object, object]:
    return (split, root, size), None


# -- one table, several views -------------------------------------------------------------------


def test_built_in_datasets_in_registration_order():
    assert registry.dataset_names() == list(BUILT_IN_DATASETS)
    assert registry.file_dataset_names() == list(FILE_DATASETS)


def test_file_backed_view_and_dataset_view_agree_on_every_entry(tmp_path):
    for name in registry.dataset_names():
        entry = registry.dataset_entry(name)
        assert entry.name == name
        assert registry.dataset_description(name) == entry.description != ""
        if name not in registry.file_dataset_names():
            assert entry.spec is None
            with pytest.raises(ConfigError, match="not read from files"):
                registry.file_dataset_spec(name)
            continue
        spec = registry.file_dataset_spec(name)
        assert spec is entry.spec and spec.name == name
        assert entry.description == spec.description
        # build_dataset goes through the entry's factory, and that factory builds from the spec.
        root = write_fixture(name, tmp_path / name)
        split = next(iter(FIXTURE_COUNTS[name]))
        ds, info = registry.build_dataset(name, split=split, root=root)
        assert isinstance(ds, SegmentationFiles)
        assert ds.spec is spec and info is spec.info
        assert len(ds) == FIXTURE_COUNTS[name][split]
    assert set(registry.file_dataset_names()) <= set(registry.dataset_names())


def test_a_registered_file_dataset_appears_in_every_view(scratch_registry, tmp_path):
    camvid = registry.file_dataset_spec("camvid")
    info = dataclasses.replace(camvid.info, name="camvid_copy")
    spec = register_file_dataset(dataclasses.replace(camvid, info=info, description="a copy"))
    assert registry.dataset_names()[-1] == registry.file_dataset_names()[-1] == "camvid_copy"
    assert (
        registry.file_dataset_spec("camvid_copy")
        is spec
        is registry.dataset_entry("camvid_copy").spec
    )
    assert registry.dataset_description("camvid_copy") == "a copy"
    ds, got = registry.build_dataset(
        "camvid_copy", split="val", root=write_fixture("camvid", tmp_path / "c")
    )
    assert ds.spec is spec and got.name == "camvid_copy" and len(ds) == 2


def test_a_generated_dataset_is_not_file_backed(scratch_registry):
    registry.register_dataset("dummy", "a dummy")(_dummy_factory)
    assert "dummy" in registry.dataset_names() and "dummy" not in registry.file_dataset_names()
    assert registry.build_dataset("dummy", split="val", root="r", size=3) == (("val", "r", 3), None)
    with pytest.raises(ConfigError, match=r"Dataset 'dummy' is not read from files .* camvid"):
        registry.file_dataset_spec("dummy")


# -- duplicates and unknown names ---------------------------------------------------------------


def test_a_duplicate_name_raises_naming_the_entry_already_registered(scratch_registry):
    before = dict(scratch_registry)
    with pytest.raises(ValueError) as exc:
        registry.register_dataset("camvid", "mine")(_dummy_factory)
    assert str(exc.value).startswith(
        "Dataset 'camvid' is already registered: file-backed dataset built by "
        "bench.data.camvid._index (CamVid, SegNet release: "
    )
    mine = f"{_dummy_factory.__module__}._dummy_factory"
    assert f"Register {mine} under another name." in str(exc.value)
    with pytest.raises(ValueError, match=r"'synthetic' is already registered: dataset built by "):
        registry.register_dataset("synthetic")(_dummy_factory)
    # A file-backed duplicate of a generated name is refused in the same table.
    camvid = registry.file_dataset_spec("camvid")
    info = dataclasses.replace(camvid.info, name="synthetic")
    with pytest.raises(ValueError, match="built by bench.data.synthetic.synthetic"):
        register_file_dataset(dataclasses.replace(camvid, info=info))
    assert scratch_registry == before  # nothing half-registered
    assert registry.file_dataset_spec("camvid") is camvid


def test_an_entry_must_carry_its_own_spec():
    with pytest.raises(ValueError, match="'voc' carries the spec of 'voc2012'"):
        registry.DatasetEntry("voc", _dummy_factory, "", registry.file_dataset_spec("voc2012"))


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: registry.build_dataset("camvd", split="train"), "Did you mean: camvid?"),
        (lambda: registry.dataset_description("cityscape"), "Did you mean: cityscapes?"),
        (lambda: registry.file_dataset_spec("voc2021"), "Did you mean: voc2012"),
        (lambda: registry.dataset_entry("zzz"), "Known datasets: synthetic, camvid, voc2012"),
    ],
)
def test_unknown_names_are_config_errors_with_close_matches(call, expected):
    with pytest.raises(ConfigError, match=expected) as exc:
        call()
    assert isinstance(exc.value, BenchError) and isinstance(exc.value, ValueError)
    assert exc.value.__suppress_context__  # raised from None: no KeyError chained
    assert str(exc.value).startswith("Unknown dataset ")


# -- options ------------------------------------------------------------------------------------


def test_an_unknown_option_is_a_config_error_not_a_type_error(tmp_path):
    with pytest.raises(ConfigError) as exc:
        registry.build_dataset("synthetic", split="val", num_sample=4)
    assert str(exc.value) == (
        "Dataset 'synthetic' has no option 'num_sample'. Did you mean: num_samples? Its options "
        "are: size, num_samples, num_classes, max_shapes, min_scale, max_scale, seed. Fix the "
        "name in the suite's dataset_options (or the keyword arguments of build_dataset)."
    )
    # Checked before the data root is looked at: the option is the first thing to fix.
    with pytest.raises(ConfigError, match=r"'camvid' has no option 'crops'.* size, crop, augment"):
        registry.build_dataset("camvid", split="train", root=tmp_path / "missing", crops=64)
    # Known options still reach the factory.
    ds, _ = registry.build_dataset("synthetic", split="val", num_samples=3, size=32)
    assert len(ds) == 3


def test_a_factory_taking_any_option_is_not_checked(scratch_registry):
    def anything(*, split: str, root: str | None = None, **options: object):
        return options, None

    registry.register_dataset("anything")(anything)
    assert registry.build_dataset("anything", split="val", whatever=1) == ({"whatever": 1}, None)
    assert registry.dataset_entry("anything").options() is None
    assert registry.dataset_entry("synthetic").options()[:2] == ["size", "num_samples"]
    assert registry.dataset_entry("synthetic").factory is synthetic


def test_file_backed_options_are_segmentation_files_keywords():
    # The factory forwards **options; its signature shows SegmentationFiles' own keywords.
    expected = [
        "size",
        "crop",
        "augment",
        "scale_range",
        "flip",
        "color_jitter",
        "protocol",
        "verify",
    ]
    for name in registry.file_dataset_names():
        assert registry.dataset_entry(name).options() == expected, name


# bench.data may import bench.errors and bench.fileio, and nothing of the harness above it.
