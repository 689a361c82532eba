"""ENet weights from an independent reimplementation: ntkhoa95/ENet_PyTorch.

Its CamVid checkpoint (``../shared/checkpoints/camvid``) is a *variant* of the paper's network:
:data:`architectures.enet.NTKHOA95_OPTIONS` builds it (the evidence for each option is in
``architectures/enet.py``, "Variants"). This module renames its keys to ours
(:func:`ntkhoa95_state_dict`) and declares the weights (``enet.camvid_ntkhoa95``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from architectures._weights import (
    CAMVID_CLASSES,
    Preprocess,
    PublishedMetric,
    WeightsInfo,
    WeightsProtocol,
    WeightsSource,
    register_weights,
)
from architectures.enet import NTKHOA95_OPTIONS

# --------------------------------------------------------------------------- ntkhoa95 weights

# Their block names -> ours, and the kind of block (ENet.py of ntkhoa95/ENet_PyTorch).
_NTKHOA95_BLOCKS: dict[str, tuple[str, str]] = {
    "b10": ("bottleneck1_0", "regular"),
    **{f"b1{j}": (f"stage1.{j - 1}", "regular") for j in range(1, 5)},
    "b20": ("bottleneck2_0", "regular"),
    **{
        f"b{s}{j}": (f"stage{s}.{j - 1}", "asymmetric" if j in (3, 7) else "regular")
        for s in (2, 3)
        for j in range(1, 9)
    },
    "b40": ("bottleneck4_0", "upsampling"),
    "b41": ("stage4.0", "regular"),
    "b42": ("stage4.1", "regular"),
    "b50": ("bottleneck5_0", "upsampling"),
    "b51": ("stage5.0", "regular"),
}
# Within a block: their module name -> ours. ``activation`` is the same PReLU module as
# ``activation1..3`` (registered four times), so it has no name of its own here.
_NTKHOA95_LAYERS: dict[str, dict[str, str]] = {
    "regular": {  # DDBottleNeck: regular, dilated and downsampling
        "conv1": "branch.0",
        "norm1": "branch.1",
        "activation1": "branch.2",
        "conv2": "branch.3",
        "norm2": "branch.4",
        "activation2": "branch.5",
        "conv3": "branch.6",
        "norm3": "branch.7",
        "activation3": "act",
    },
    "asymmetric": {  # ABottleNeck: 1x5 then 5x1; dropout before the last batch norm
        "conv1": "branch.0",
        "norm1": "branch.1",
        "activation1": "branch.2",
        "conv21": "branch.3",
        "conv22": "branch.4",
        "norm2": "branch.5",
        "activation2": "branch.6",
        "conv3": "branch.7",
        "norm3": "branch.9",  # branch.8 is the dropout
        "activation3": "act",
    },
    "upsampling": {  # UBottleNeck
        "main_conv": "main.0",
        "convt1": "branch.0",
        "norm1": "branch.1",
        "activation1": "branch.2",
        "convt2": "branch.3",
        "norm2": "branch.4",
        "activation2": "branch.5",
        "convt3": "branch.6",
        "norm3": "branch.7",
        "activation3": "act",
    },
}
_NTKHOA95_INITIAL = {"conv": "conv", "norm": "bn", "activation": "act"}
# 1x1 stride-1 transposed convolutions, stored (in, out, 1, 1); ours are Conv2d (out, in, 1, 1).
_NTKHOA95_TRANSPOSED_1X1 = ("convt1", "convt3")
_KEY_RE = re.compile(r"^(?P<block>initial|b\d\d|fullconv)\.(?:(?P<layer>\w+)\.)?(?P<field>\w+)$")


def ntkhoa95_state_dict(state: Mapping[str, object]) -> dict[str, torch.Tensor]:
    """Renames a state dict of ntkhoa95/ENet_PyTorch's ``ENet`` to this module's names.

    The result loads with ``strict=True`` into ``enet(num_classes=K, **NTKHOA95_OPTIONS)``
    (K = 12 for their CamVid checkpoint: 11 classes + void). Keys are renamed: ``b10`` ->
    ``bottleneck1_0``, ``b11``-``b14`` -> ``stage1.0``-``.3``, ``b21``-``b28`` ->
    ``stage2.0``-``.7`` (and stage 3 alike), ``b40``/``b50`` -> ``bottleneck4_0``/``5_0``,
    ``b41``, ``b42``, ``b51`` -> ``stage4.0``, ``.1``, ``stage5.0``; inside a bottleneck
    ``conv1, norm1, activation1, conv2, norm2, activation2, conv3, norm3`` -> ``branch.0`` to
    ``branch.7`` (asymmetric: ``conv21, conv22`` -> ``branch.3, .4``, then ``.5, .6, .7`` and
    ``norm3`` -> ``branch.9``), ``activation3`` -> ``act``, ``main_conv`` -> ``main.0``,
    ``convt1/2/3`` -> ``branch.0/.3/.6``; ``initial.norm``/``activation`` -> ``initial.bn``/
    ``act``. Each bottleneck's ``activation`` is dropped: it is the same PReLU module as its
    ``activation1..3`` (checked). The one change to a tensor: ``convt1`` and ``convt3`` of the
    upsampling bottlenecks are 1x1 stride-1 transposed convolutions stored ``(in, out, 1, 1)``;
    ours are ``Conv2d`` weights ``(out, in, 1, 1)``, so dimensions 0 and 1 are swapped (the same
    linear map; no arithmetic).

    Args:
        state: Their state dict, or the checkpoint dict ``{"state_dict": ...}`` around it.

    Returns:
        A new dict of their tensors under our names (the swapped ones as contiguous copies).

    Raises:
        ValueError: a key that their ``ENet`` does not have, a value that is not a tensor, or a
            bottleneck whose PReLU aliases (``activation``, ``activation1..3``) differ.
    """
    inner = state.get("state_dict", state)
    if not isinstance(inner, Mapping):
        raise ValueError(
            f"ntkhoa95_state_dict: 'state_dict' holds a {type(inner).__name__}, not a mapping."
        )
    out: dict[str, torch.Tensor] = {}
    prelus: dict[str, list[tuple[str, torch.Tensor]]] = {}
    for key, tensor in inner.items():
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"ntkhoa95_state_dict: {key!r} holds a {type(tensor).__name__}.")
        block, _, rest = key.partition(".")
        layer = rest.rpartition(".")[0]
        if block in _NTKHOA95_BLOCKS and layer.startswith("activation"):
            prelus.setdefault(block, []).append((key, tensor))
            if key == f"{block}.activation.weight":
                continue  # the alias of activation1..3
        new = _ntkhoa95_key(key)
        if new is None:
            raise ValueError(
                f"ntkhoa95_state_dict: unexpected key {key!r}: not a key of the ENet of "
                f"ntkhoa95/ENet_PyTorch (commit 67a87d1), whose keys look like "
                f"'initial.conv.weight', 'b10.conv1.weight', 'b23.conv21.weight', "
                f"'b40.main_conv.bias', 'fullconv.weight'. Pass that model's state dict (or the "
                f"{{'state_dict': ...}} checkpoint around it)."
            )
        if layer in _NTKHOA95_TRANSPOSED_1X1 and key.endswith(".weight"):
            tensor = tensor.transpose(0, 1).contiguous()
        out[new] = tensor
    for items in prelus.values():
        first_key, first = items[0]
        for other_key, other in items[1:]:
            if other.shape != first.shape or not torch.equal(other, first):
                raise ValueError(
                    f"ntkhoa95_state_dict: {other_key!r} differs from {first_key!r}; in their "
                    f"model a bottleneck's activations are one shared PReLU, so they must be "
                    f"equal (enet option prelu='shared' holds one slope per bottleneck)."
                )
    return out


def _ntkhoa95_key(key: str) -> str | None:
    """Our name for one of their keys, or None for a name their model does not have."""
    match = _KEY_RE.match(key)
    if match is None:
        return None
    block, layer, field = match["block"], match["layer"], match["field"]
    if block == "fullconv":
        return f"fullconv.{field}" if layer is None else None
    if layer is None:
        return None
    if block == "initial":
        ours = _NTKHOA95_INITIAL.get(layer)
        return None if ours is None else f"initial.{ours}.{field}"
    if block not in _NTKHOA95_BLOCKS:
        return None
    prefix, kind = _NTKHOA95_BLOCKS[block]
    ours = _NTKHOA95_LAYERS[kind].get(layer)
    return None if ours is None else f"{prefix}.{ours}.{field}"


# -- published weights --------------------------------------------------------------------------
register_weights(
    WeightsInfo(
        name="enet.camvid_ntkhoa95",
        file="camvid/ntkhoa95_enet_camvid.pth",
        sha256="5765d37ee5917a1b6e68df6cb227581587a2db295aad2a5593da98a91efb1c56",
        source=WeightsSource(
            repository="ntkhoa95/ENet_PyTorch",
            commit="67a87d1",
            path="content/checkpoint/camvid/best_model.pth",
            licence="MIT (2022)",
        ),
        dataset="camvid",
        class_names=CAMVID_CLASSES,
        # 12 outputs in SegNet order: the 11 classes, then void (dropped before the argmax
        # under the standard protocol; scored as a class under theirs).
        channels=(*range(11), None),
        void_channel=11,
        # Their loader reads with OpenCV and converts BGR -> RGB before the network (utils.py),
        # so the network sees RGB; 0-255 values, no mean/std.
        preprocess=Preprocess(channel_order="RGB", scale=255.0),
        # The standard CamVid protocol (the whole 360x480 image, void ignored).
        protocol=WeightsProtocol(resolution=None),
        # Theirs (utils.py `loader`, train.py's evaluation): image and label both resized to
        # 512x512 with `cv2.resize(x, (h, w), cv2.INTER_NEAREST)`, whose third positional
        # argument is `dst`, so both are resized bilinearly (the label ids too, rounded); the
        # confusion matrix has 12 classes, void included, and their mIoU averages all 12.
        authors_protocol=WeightsProtocol(
            resolution=(512, 512),
            interpolation="bilinear",
            align_corners=False,
            labels="resized",
            label_interpolation="bilinear",
            void="class",
        ),
        builder_options=dict(NTKHOA95_OPTIONS),
        convert_keys=ntkhoa95_state_dict,
        published=(
            PublishedMetric(
                "miou",
                58.6,
                "unnamed",
                "README 'Reproduced 58.6' at 480x360 (no split named; model selected on "
                "validation batches): a weak claim",
            ),
        ),
        notes=(
            "The file is an early snapshot: every batch norm has num_batches_tracked = 72 "
            "(about two epochs), and it scores about 18 mIoU under either protocol."
        ),
    )
)
