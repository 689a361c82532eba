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
    # LR-ASPP's 11 head tensors are absent from DeepLabV3's checkpoint, and DeepLabV3's ASPP
    # head and auxiliary classifier (52 tensors) are not in LR-ASPP.
    assert "missing keys (11): classifier.cbr.0.weight" in message
    assert "unexpected keys (52): aux_classifier." in message
    assert "(+3 more)" in message and "(+44 more)" in message


def test_plain_state_dict_of_other_arch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deeplab_plain.pt"
    torch.save(_build(DEEPLAB, 2, seed=0).state_dict(), path)
    with pytest.raises(CheckpointError) as info:
        load_into(_build(LRASPP, 2, seed=1), path, arch=LRASPP, num_classes=2)
    message = str(info.value)
    assert f"Checkpoint {path} does not fit {LRASPP!r} with 2 classes" in message
    assert "missing keys (11)" in message and "unexpected keys (52)" in message
    assert "Is it for another architecture or class count?" in message


def test_wrapped_model_state_dict_is_refused(tmp_path: Path) -> None:
    """A PadCrop state dict (keys prefixed ``model.``) does not silently load."""
    from bench.models import PadCrop

    model = _build(LRASPP, 2, seed=0)
    path = tmp_path / "wrapped.pt"
    torch.save(PadCrop(model, 16).state_dict(), path)
    with pytest.raises(
        CheckpointError, match=r"missing keys \(319\)[\s\S]*unexpected keys \(319\)"
    ):
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
        match=r"neither a semseg-bench checkpoint nor a state_dict.*"
        r"found list",
    ):
        read_checkpoint(path)


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
