"""Tests for ``bench.checkpoint``: round trips, mismatch reports, corrupt and malicious files.

Models are LR-ASPP / DeepLabV3 on MobileNetV3-Large (the cheapest registered entries; their
MobileNetV3 backbones share every key, so only the heads differ).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

import architectures
from bench.checkpoint import FORMAT, load_into, read_checkpoint, save_checkpoint
from bench.errors import CheckpointError, MissingFileError

LRASPP = "tv_lraspp_mobilenet_v3_large"
DEEPLAB = "tv_deeplabv3_mobilenet_v3_large"


def _build(name: str, num_classes: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return architectures.build(name, num_classes=num_classes).eval()


def _outputs(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)))


def _assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def _assert_same_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


# --------------------------------------------------------------------------- round trips


def test_a_failed_save_leaves_no_file_behind(tmp_path: Path) -> None:
    """A save that fails half-way (here: meta that cannot be pickled) leaves neither the
    checkpoint nor a temporary file, so a re-run does not trip over debris."""
    model = _build(LRASPP, 2, seed=0)
    with pytest.raises(AttributeError, match="Can't pickle local object"):
        save_checkpoint(
            tmp_path / "x.pt", model, arch=LRASPP, num_classes=2, meta={"f": lambda: None}
        )
    assert list(tmp_path.iterdir()) == []


def test_saved_checkpoint_mode_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        path = save_checkpoint(
            tmp_path / "x.pt", _build(LRASPP, 2, seed=0), arch=LRASPP, num_classes=2
        )
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640


def test_harness_format_round_trip(tmp_path: Path) -> None:
    model = _build(LRASPP, 2, seed=0)
    path = save_checkpoint(
        tmp_path / "sub" / "lraspp.pt",
        model,
        arch=LRASPP,
        num_classes=2,
        meta={"steps": 3, "miou": 0.25},
    )
    assert path == tmp_path / "sub" / "lraspp.pt" and path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["lraspp.pt"]  # no .tmp left behind

    ckpt = read_checkpoint(path)
    assert (ckpt["format"], ckpt["arch"], ckpt["num_classes"]) == (FORMAT, LRASPP, 2)
    assert ckpt["meta"] == {"steps": 3, "miou": 0.25}

    fresh = _build(LRASPP, 2, seed=1)
    assert not torch.equal(_outputs(fresh), _outputs(model))
    returned = load_into(fresh, path, arch=LRASPP, num_classes=2)
    assert returned["arch"] == LRASPP
    _assert_same_state(fresh, model)
    assert torch.equal(_outputs(fresh), _outputs(model))


def test_plain_state_dict_round_trip(tmp_path: Path) -> None:
    model = _build(LRASPP, 2, seed=0)
    path = tmp_path / "plain.pth"
    torch.save(model.state_dict(), path)

    ckpt = read_checkpoint(path)
    assert (ckpt["format"], ckpt["arch"], ckpt["num_classes"]) == ("state_dict", None, None)
    fresh = _build(LRASPP, 2, seed=1)
    load_into(fresh, path, arch=LRASPP, num_classes=2)
    _assert_same_state(fresh, model)


# --------------------------------------------------------------------------- mismatches


def test_other_class_count_lists_shape_mismatches(tmp_path: Path) -> None:
    path = save_checkpoint(
        tmp_path / "k3.pt", _build(LRASPP, 3, seed=0), arch=LRASPP, num_classes=3
    )
    model = _build(LRASPP, 2, seed=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as info:
        load_into(model, path, arch=LRASPP, num_classes=2)
    message = str(info.value)
    assert str(path) in message
    assert f"is for arch {LRASPP!r} with 3 classes; asked for {LRASPP!r} with 2" in message
    # LR-ASPP's heads: 1x1 convs from 40 (stride-8 features) and 128 channels to K classes.
    assert "classifier.low_classifier.weight (3, 40, 1, 1) vs model (2, 40, 1, 1)" in message
    assert "classifier.high_classifier.weight (3, 128, 1, 1) vs model (2, 128, 1, 1)" in message
    assert "missing keys" not in message and "unexpected keys" not in message
    _assert_same_state_dict(model, before)  # nothing was loaded


def test_other_arch_lists_missing_and_unexpected_keys(tmp_path: Path) -> None:
    path = save_checkpoint(
        tmp_path / "deeplab.pt", _build(DEEPLAB, 2, seed=0), arch=DEEPLAB, num_classes=2
    )
    with pytest.raises(CheckpointError) as info:
        load_into(_build(LRASPP, 2, seed=1), path, arch=LRASPP, num_classes=2)
    message = str(info.value)
    assert f"is for arch {DEEPLAB!r} with 2 classes; asked for {LRASPP!r}" in message
    # LR-ASPP's 11 head tensors are absent from DeepLabV3's checkpoint (10 listed: torch's
    # strict load forgives a missing batch-norm num_batches_tracked, and so does the check),
    # and DeepLabV3's ASPP head and auxiliary classifier (52 tensors) are not in LR-ASPP.
    assert "missing keys (10): classifier.cbr.0.weight" in message
    assert "classifier.cbr.1.num_batches_tracked" not in message
    assert "unexpected keys (52): aux_classifier." in message
    assert "(+2 more)" in message and "(+44 more)" in message


def test_plain_state_dict_of_other_arch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deeplab_plain.pt"
    torch.save(_build(DEEPLAB, 2, seed=0).state_dict(), path)
    with pytest.raises(CheckpointError) as info:
        load_into(_build(LRASPP, 2, seed=1), path, arch=LRASPP, num_classes=2)
    message = str(info.value)
    assert f"Checkpoint {path} does not fit {LRASPP!r} with 2 classes" in message
    assert "missing keys (10)" in message and "unexpected keys (52)" in message
    assert message.endswith(
        "If the file is this architecture under other module names, declare a key conversion "
        "for it (WeightsInfo.convert_keys) or evaluate it with --like NAME of a weights entry "
        "that has one; otherwise it is for another architecture or class count."
    )


def test_wrapped_model_state_dict_is_refused_naming_the_prefix(tmp_path: Path) -> None:
    """A PadCrop state dict (keys prefixed ``model.``) does not silently load; the message
    names the prefix to strip. 319 tensors, 47 of them num_batches_tracked (not listed as
    missing: torch's strict load would fill them in)."""
    from bench.models import PadCrop

    model = _build(LRASPP, 2, seed=0)
    path = tmp_path / "wrapped.pt"
    torch.save(PadCrop(model, 16).state_dict(), path)
    with pytest.raises(CheckpointError) as info:
        load_into(_build(LRASPP, 2, seed=1), path, arch=LRASPP, num_classes=2)
    message = str(info.value)
    assert "missing keys (272)" in message and "unexpected keys (319)" in message
    assert message.endswith(
        "Every unexpected key is one of the model's under the prefix 'model.': strip it (a "
        "weights entry declares that as its key conversion; --like NAME borrows one)."
    )
    # The declared conversion is the fix.
    returned = load_into(
        _build(LRASPP, 2, seed=1),
        path,
        arch=LRASPP,
        num_classes=2,
        convert=lambda sd: {k.removeprefix("model."): v for k, v in sd.items()},
    )
    assert set(returned["state_dict"]) == set(model.state_dict())


def test_data_parallel_prefix_is_named(tmp_path: Path) -> None:
    model = _build(LRASPP, 2, seed=0)
    path = tmp_path / "dp.pt"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)
    with pytest.raises(CheckpointError, match=r"prefix 'module\.' \(the file was saved from a "):
        load_into(_build(LRASPP, 2, seed=1), path, arch=LRASPP, num_classes=2)


def test_old_file_without_num_batches_tracked_loads_as_torch_strict_does(tmp_path: Path) -> None:
    """Files from before batch norm had ``num_batches_tracked``: torch's strict load accepts
    them (the buffer is set to 0), so the harness does too; any other missing key is refused."""
    model = _build(LRASPP, 2, seed=0)
    old = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert len(old) == len(model.state_dict()) - 47
    path = tmp_path / "old.pt"
    torch.save(old, path)
    fresh = _build(LRASPP, 2, seed=1)
    torch.nn.Module.load_state_dict(_build(LRASPP, 2, seed=1), old, strict=True)  # torch agrees
    load_into(fresh, path, arch=LRASPP, num_classes=2)
    got = fresh.state_dict()
    assert all(torch.equal(got[k], v) for k, v in old.items())
    assert int(got["backbone.0.1.num_batches_tracked"]) == 0
    del old["backbone.0.1.running_var"]
    torch.save(old, path)
    with pytest.raises(CheckpointError, match=r"missing keys \(1\): backbone\.0\.1\.running_var\n"):
        load_into(_build(LRASPP, 2, seed=1), path, arch=LRASPP, num_classes=2)


# --------------------------------------------------------------------------- bad files


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="nope.pt does not exist"):
        read_checkpoint(tmp_path / "nope.pt")


def _valid_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "valid.pt"
    torch.save({"w": torch.arange(1000.0)}, path)
    return path.read_bytes()


@pytest.mark.parametrize("kind", ["random", "truncated", "empty", "text"])
def test_corrupt_file_raises_value_error_naming_it(tmp_path: Path, kind: str) -> None:
    data = {
        "random": bytes(
            torch.randint(
                0, 256, (4096,), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
            ).tolist()
        ),
        "truncated": _valid_bytes(tmp_path)[:400],
        "empty": b"",
        "text": b"not a checkpoint\n",
    }[kind]
    path = tmp_path / f"{kind}.pt"
    path.write_bytes(data)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    message = str(info.value)
    assert f"Checkpoint {path} is not a readable torch file" in message
    assert "refused" not in message  # garbage is not reported as a code-running object


def test_non_tensor_content_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(
        CheckpointError,
        match=r"neither a semseg-bench checkpoint, a state_dict of tensors, nor a dict holding "
        r"one under 'state_dict' or 'model' \(found list\)\. Re-save the model's state_dict alone\.",
    ):
        read_checkpoint(path)
    torch.save({"epoch": 3, "weights": {"w": torch.zeros(2)}}, path)
    with pytest.raises(CheckpointError, match=r"found a dict with keys \['epoch', 'weights'\]"):
        read_checkpoint(path)


@pytest.mark.parametrize("key", ["state_dict", "model"])
def test_a_training_scripts_dict_loads_from_its_weights_key(tmp_path: Path, key: str) -> None:
    model = _build(LRASPP, 2, seed=0)
    path = tmp_path / "script.pt"
    torch.save({key: model.state_dict(), "epoch": 7, "optimizer": {"lr": 0.1}}, path)
    ckpt = read_checkpoint(path)
    assert ckpt["format"] == f"dict[{key!r}]"
    assert ckpt["meta"] == {"other_keys": ["epoch", "optimizer"]}
    fresh = _build(LRASPP, 2, seed=1)
    load_into(fresh, path, arch=LRASPP, num_classes=2)
    _assert_same_state_dict(fresh, model.state_dict())


# --------------------------------------------------------------------------- security


class _RunsCodeOnLoad:
    """Unpickling this calls ``os.mkdir(path)``: a checkpoint that acts on its reader's machine
    (a real attack would call something worse; a side effect we can observe is enough)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (self.path,))


def test_checkpoint_that_runs_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = _RunsCodeOnLoad(str(marker))
    torch.save(
        {
            "format": FORMAT,
            "arch": LRASPP,
            "num_classes": 2,
            "state_dict": {},
            "meta": {"x": payload},
        },
        path,
    )

    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    message = str(info.value)
    assert f"Checkpoint {path} was refused" in message
    assert "mkdir" in message  # torch's detail names the blocked global
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="was refused"):
        load_into(_build(LRASPP, 2, seed=0), path, arch=LRASPP, num_classes=2)
    assert not marker.exists()

    # The payload is live: an unsafe load (never done by the harness) runs it. This is the one
    # deliberate weights_only=False in the project, to prove the refusal above is not vacuous.
    torch.load(path, weights_only=False)
    assert marker.is_dir()
