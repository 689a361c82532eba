"""torchvision's reference segmentation models, as trusted comparison points.

Entries: ``tv_fcn_resnet50`` (FCN head on a dilated ResNet-50, arXiv 1411.4038 + 1512.03385),
``tv_deeplabv3_resnet50`` and ``tv_deeplabv3_mobilenet_v3_large`` (DeepLabV3, arXiv 1706.05587),
``tv_lraspp_mobilenet_v3_large`` (Lite R-ASPP from "Searching for MobileNetV3", arXiv
1905.02244). Reference implementation: torchvision ``models/segmentation`` — these builders call
it directly with ``weights=None`` (and ``weights_backbone=None``), so nothing is downloaded.

Only the forward pass is adapted (the submodules, and so the state-dict keys, are torchvision's
own, so a torchvision checkpoint loads as is):

* eval mode returns the main logits ``(N, K, H, W)`` and never runs the auxiliary classifier
  (torchvision runs it in eval too, which inflates measured latency and FLOPs);
* train mode returns ``{"out": logits, "aux": aux_logits}`` when the model has an auxiliary
  classifier; torchvision's reference recipe weighs the auxiliary loss 0.5.

The "paper" figures for these entries are the ones torchvision publishes in its weights
metadata (``Weights.meta["num_params"]`` and ``meta["_ops"]``, a multiply-add count at
520x520, 21 VOC classes; the parameter counts include the auxiliary classifier, which the
ResNet-50 entries therefore build by default).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.segmentation import (
    DeepLabV3_MobileNet_V3_Large_Weights,
    DeepLabV3_ResNet50_Weights,
    FCN_ResNet50_Weights,
    LRASPP_MobileNet_V3_Large_Weights,
    deeplabv3_mobilenet_v3_large,
    deeplabv3_resnet50,
    fcn_resnet50,
    lraspp_mobilenet_v3_large,
)

from architectures._registry import ArchInfo, register

_REFERENCE = "https://github.com/pytorch/vision/tree/main/torchvision/models/segmentation"


class TorchvisionSegmentation(nn.Module):
    """Wraps a torchvision segmentation model so that eval returns a tensor without aux work."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.backbone = model.backbone
        self.classifier = model.classifier
        self.aux_classifier = getattr(model, "aux_classifier", None)
        self.whole_features = not hasattr(model, "aux_classifier")  # LR-ASPP reads low + high

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        size = x.shape[-2:]
        features = self.backbone(x)  # {"out": (N, C, H/s, W/s), ["aux"|"low"...]}
        head_in = features if self.whole_features else features["out"]
        out = F.interpolate(
            self.classifier(head_in), size=size, mode="bilinear", align_corners=False
        )  # (N, K, H, W)
        if self.training and self.aux_classifier is not None:
            aux = F.interpolate(
                self.aux_classifier(features["aux"]),
                size=size,
                mode="bilinear",
                align_corners=False,
            )
            return {"out": out, "aux": aux}
        return out


def _meta_info(
    name: str, title: str, paper: str, year: int, family: str, weights, divisor: int, aux: bool
) -> ArchInfo:
    meta = weights.meta
    return ArchInfo(
        name=name,
        title=title,
        paper=paper,
        year=year,
        family=family,
        reference=_REFERENCE,
        input_divisor=divisor,
        paper_params=meta["num_params"],
        paper_params_note="torchvision weights metadata, 21 classes"
        + (", auxiliary classifier included" if aux else ""),
        paper_params_with_aux=aux,  # meta["num_params"] counts the aux classifier
        paper_gflops_with_aux=aux,  # and meta["_ops"] runs it (tests/test_torchvision_refs.py)
        paper_num_classes=21,
        paper_gflops=meta["_ops"],
        paper_resolution=(520, 520),
        paper_flops_convention="macs",
        aux_weights=(("aux", 0.5),) if aux else (),
        notes="torchvision's model with weights=None; eval skips the auxiliary classifier.",
    )


@register(
    _meta_info(
        "tv_fcn_resnet50",
        "FCN-ResNet50 (torchvision)",
        "1411.4038",
        2015,
        "fcn",
        FCN_ResNet50_Weights.DEFAULT,
        8,
        aux=True,
    )
)
def tv_fcn_resnet50(*, num_classes: int, aux_loss: bool = True) -> nn.Module:
    """torchvision ``fcn_resnet50`` (dilated ResNet-50, output stride 8)."""
    return TorchvisionSegmentation(
        fcn_resnet50(
            weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=aux_loss
        )
    )


@register(
    _meta_info(
        "tv_deeplabv3_resnet50",
        "DeepLabV3-ResNet50 (torchvision)",
        "1706.05587",
        2017,
        "deeplab",
        DeepLabV3_ResNet50_Weights.DEFAULT,
        8,
        aux=True,
    )
)
def tv_deeplabv3_resnet50(*, num_classes: int, aux_loss: bool = True) -> nn.Module:
    """torchvision ``deeplabv3_resnet50`` (ASPP on a dilated ResNet-50, output stride 8)."""
    return TorchvisionSegmentation(
        deeplabv3_resnet50(
            weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=aux_loss
        )
    )


@register(
    _meta_info(
        "tv_deeplabv3_mobilenet_v3_large",
        "DeepLabV3-MobileNetV3-L (torchvision)",
        "1706.05587",
        2017,
        "deeplab",
        DeepLabV3_MobileNet_V3_Large_Weights.DEFAULT,
        16,
        aux=True,
    )
)
def tv_deeplabv3_mobilenet_v3_large(*, num_classes: int, aux_loss: bool = True) -> nn.Module:
    """torchvision ``deeplabv3_mobilenet_v3_large`` (output stride 16)."""
    return TorchvisionSegmentation(
        deeplabv3_mobilenet_v3_large(
            weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=aux_loss
        )
    )


@register(
    _meta_info(
        "tv_lraspp_mobilenet_v3_large",
        "LR-ASPP-MobileNetV3-L (torchvision)",
        "1905.02244",
        2019,
        "mobile",
        LRASPP_MobileNet_V3_Large_Weights.DEFAULT,
        16,
        aux=False,
    )
)
def tv_lraspp_mobilenet_v3_large(*, num_classes: int) -> nn.Module:
    """torchvision ``lraspp_mobilenet_v3_large`` (Lite R-ASPP head, no auxiliary classifier)."""
    return TorchvisionSegmentation(
        lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=num_classes)
    )
