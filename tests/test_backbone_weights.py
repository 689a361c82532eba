"""Tests for ImageNet trunks from a named file (``run --backbone-weights``, issue 13 part B 6):
architectures.backbone_file, build_model, the suite key and its setting id, and the record.

The "ImageNet" files here are FIXTURES: torchvision's ResNet-18 with seeded random weights,
saved under torchvision's parameter names (nothing is downloaded)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from torchvision.models import ResNet18_Weights, resnet18

import architectures
from architectures._pretrained import read_backbone_file
from bench.errors import ConfigError
from bench.fileio import sha256_of
from bench.models import build_model
from bench.suites import SuiteConfig, with_backbone_weights
from tests.factories import run_cli, write_suite

pytestmark = pytest.mark.usefixtures("one_thread")


def resnet18_file(folder: Path, seed: int = 5, name: str = "resnet18-fixture.pth") -> Path:
    torch.manual_seed(seed)
    path = folder / name
    torch.save(resnet18(weights=None).state_dict(), path)
    return path


def test_the_trunk_starts_from_the_named_file_not_the_cache(tmp_path, no_download):
    path = resnet18_file(tmp_path)
    saved = torch.load(path, weights_only=True)
    with architectures.backbone_file(path):
        model = architectures.build("linknet", num_classes=3, pretrained_backbone=True)
    loaded = model.backbone.state_dict()
    assert set(loaded) == {k for k in saved if not k.startswith("fc.")}
    for key in ("conv1.weight", "layer4.1.bn2.running_var", "layer2.0.downsample.0.weight"):
        torch.testing.assert_close(loaded[key], saved[key])
    # Outside the block the cache is looked in again (and it is empty here).
    with pytest.raises(FileNotFoundError, match=r"not in the local torch hub cache"):
        architectures.build("linknet", num_classes=3, pretrained_backbone=True)


def test_a_wrapped_state_dict_is_accepted(tmp_path):
    state = torch.load(resnet18_file(tmp_path), weights_only=True)
    torch.save({"state_dict": state, "epoch": 90}, tmp_path / "wrapped.pth")
    read = read_backbone_file(tmp_path / "wrapped.pth", ResNet18_Weights.IMAGENET1K_V1)
    assert read.keys() == state.keys()


def test_a_file_of_another_network_is_refused_naming_the_differences(tmp_path):
    state = torch.load(resnet18_file(tmp_path), weights_only=True)
    del state["layer1.0.conv1.weight"]
    state["fc.weight"] = torch.zeros(10, 512)  # a 10-class head: the shape differs
    state["head.extra"] = torch.zeros(1)
    torch.save(state, tmp_path / "other.pth")
    with pytest.raises(ValueError) as exc:
        read_backbone_file(tmp_path / "other.pth", ResNet18_Weights.IMAGENET1K_V1)
    message = str(exc.value)
    assert "are not resnet18's: missing layer1.0.conv1.weight" in message
    assert "unexpected head.extra" in message
    assert "fc.weight: shape (10, 512), expected (1000, 512)" in message
    assert "resnet18-f37072fd.pth" in message and "Fix:" in message


def test_unsafe_unreadable_and_missing_files_are_refused(tmp_path):
    weights = ResNet18_Weights.IMAGENET1K_V1
    torch.save({"conv1.weight": torch.zeros(1), "note": Path("x")}, tmp_path / "pickle.pth")
    with pytest.raises(ValueError, match=r"could not be read with weights_only=True"):
        read_backbone_file(tmp_path / "pickle.pth", weights)
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(ValueError, match=r"hold a list, not a state dict of tensors"):
        read_backbone_file(tmp_path / "list.pth", weights)
    with pytest.raises(FileNotFoundError, match=r"absent.pth not found; expected the ImageNet"):
        read_backbone_file(tmp_path / "absent.pth", weights)


def test_an_architecture_without_a_trunk_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"enet has no ImageNet trunk to load"):
        build_model("enet", num_classes=3, backbone_weights=resnet18_file(tmp_path))


def test_the_setting_id_follows_the_files_content_not_its_path(tmp_path):
    a = resnet18_file(tmp_path, 5, "a.pth")
    same = Path(shutil.copy(a, tmp_path / "copy.pth"))  # the same bytes (torch.save names
    # its archive after the file, so a second save under another name is other bytes)
    other = resnet18_file(tmp_path, 6, "b.pth")
    plain = SuiteConfig(name="s")
    ids = {
        name: SuiteConfig(name="s", backbone_weights={"linknet": str(p)}).setting
        for name, p in (("a", a), ("same", same), ("other", other))
    }
    assert ids["a"] == ids["same"] != ids["other"]
    assert plain.setting not in ids.values()
    with pytest.raises(ConfigError, match=r"backbone_weights.linknet: no file .*absent.pth"):
        SuiteConfig(name="s", backbone_weights={"linknet": str(tmp_path / "absent.pth")})


def test_command_line_specs_name_one_architecture_or_every_one_run(tmp_path):
    path = str(resnet18_file(tmp_path))
    suite = SuiteConfig(name="s")
    archs = ["linknet", "bisenet_r18"]
    assert with_backbone_weights(suite, [path], archs).backbone_weights == dict.fromkeys(
        archs, path
    )
    assert with_backbone_weights(suite, [f"linknet={path}"], archs).backbone_weights == {
        "linknet": path
    }
    with pytest.raises(ConfigError, match=r"'pspnet50' is not run here \(running: linknet, "):
        with_backbone_weights(suite, [f"pspnet50={path}"], archs)
    with pytest.raises(ConfigError, match=r"^--backbone-weights: backbone_weights.linknet: no"):
        with_backbone_weights(suite, [f"linknet={tmp_path / 'absent.pth'}"], archs)


SUITE = """\
dataset: synthetic
dataset_options: {num_samples: 4}
resolution: [32, 32]
archs: [linknet]
threads: 1
train: {steps: 1, batch_size: 2, lr: 0.01}
eval: {split: val, batch_size: 4, num_samples: 0}
speed: {enabled: false}
complexity: {enabled: false}
"""


def test_a_run_records_the_file_and_its_sha(tmp_path, restore_threads):
    path = resnet18_file(tmp_path)
    suite = write_suite(tmp_path, SUITE, "bb.yaml")
    results = tmp_path / "results"
    argv = ["run", "--suite", suite, "--results-dir", results, "-q", "--no-tensorboard"]
    code, out, _ = run_cli([*argv, "--backbone-weights", f"linknet={path}"])
    assert code == 0, out
    (found,) = (results / "records").glob("bb__linknet__*.json")
    record = json.loads(found.read_text(encoding="utf-8"))
    assert record["status"] == "ok"
    assert record["train"]["backbone_weights"] == str(path)
    assert record["train"]["backbone_sha256"] == sha256_of(path)
    assert "--backbone-weights" in record["command"]
    # From scratch: no backbone fields, and a setting of its own.
    code, out, _ = run_cli(argv)
    assert code == 0, out
    records = [json.loads(p.read_text()) for p in (results / "records").glob("bb__linknet__*")]
    assert len({r["setting"] for r in records}) == 2
    assert sum("backbone_weights" in r["train"] for r in records) == 1
