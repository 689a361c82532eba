"""Checks ``bench.complexity`` against the metadata torchvision publishes for its weights.

torchvision's weight enums carry ``meta["num_params"]`` and ``meta["_ops"]`` ("GFLOPS", which
torchvision defines as multiply-adds, i.e. GMACs) at the 520x520 evaluation size. Those numbers are
read offline from the enums; no weights are downloaded (models are built with ``weights=None``).

**Which figure is compared with which: both with the auxiliary classifier.** torchvision's
``num_params`` counts every registered parameter, aux classifier included, and its ``_ops``
counts the forward pass *with* the aux head running (measured below: without it, ``_ops`` is
missed by 6.5% for fcn_resnet50). So ``num_params`` is compared with our ``params_with_aux``,
and ``_ops`` with the MACs of torchvision's own model built with ``aux_loss=True``, whose
forward runs the aux head also in eval mode (there ``params`` = ``params_with_aux``: the
counted pass reads every parameter). Our registered ``tv_*`` entries skip the aux head in eval
(the network the leaderboard times); :func:`test_registered_entry_is_the_published_model_minus_aux`
checks that their eval ``params`` and ``macs`` are the published figures minus the hand-counted
aux head, i.e. both without.

Findings (torch 2.14.1, torchvision 0.29.1, fvcore 0.1.5.post20221221, 1x3x520x520):

* ``_ops`` **includes the auxiliary classifier**. torchvision's segmentation ``forward`` runs the
  aux head whenever it exists (also in eval mode), and ``_ops`` matches the count of the model
  built with ``aux_loss=True`` to the published precision:

  =============================  ==========  ==================  ===============  ===========
  model                          meta _ops   measured GMACs      aux head GMACs   without aux
  =============================  ==========  ==================  ===============  ===========
  fcn_resnet50                   152.717     152.716512          9.990739         -6.5%
  deeplabv3_resnet50             178.722     178.721945          9.990739         -5.6%
  deeplabv3_mobilenet_v3_large   10.452      10.452448           0.016097         -0.15%
  lraspp_mobilenet_v3_large      2.086       2.086220            (no aux head)
  =============================  ==========  ==================  ===============  ===========

  For the two ResNet-50 models, leaving the aux head out would miss ``_ops`` by more than 1%
  (asserted below); for deeplabv3_mobilenet_v3_large the aux head is too small to tell.
* ``_ops`` counts convolutions only, i.e. exactly our ``macs`` (matrix-product MACs). fvcore's
  element-wise estimates (batch norm, bilinear upsampling, adaptive pooling), which we keep apart
  in ``non_mac_ops``, would add 0.2% (fcn_resnet50) to 4.3% (lraspp_mobilenet_v3_large) and break
  the 1% tolerance for the MobileNet models.

Runtime (2 shared CPU cores, fvcore trace plus the FlopCounterMode cross-check, each a real
forward pass): about 12 s per ResNet-50 model and 2-3 s per MobileNet model when the machine is
idle, 2-3x that under load (73 s for all four measured under load). deeplabv3_resnet50 is therefore
marked ``slow``; the default selection keeps fcn_resnet50 (with the aux evidence) and both
MobileNet models.
"""

from __future__ import annotations

import functools

import pytest
from torchvision.models import WeightsEnum
from torchvision.models import segmentation as tv_seg

import architectures
from bench.complexity import ComplexityReport, count_complexity

INPUT_SHAPE = (1, 3, 520, 520)
NUM_CLASSES = 21

# (builder name, weights enum, aux_loss): aux_loss=True where the published metadata counts the
# auxiliary classifier (all models that have one; LR-ASPP has none).
FCN = ("fcn_resnet50", tv_seg.FCN_ResNet50_Weights, True)
DEEPLAB = ("deeplabv3_resnet50", tv_seg.DeepLabV3_ResNet50_Weights, True)
DEEPLAB_MOBILE = (
    "deeplabv3_mobilenet_v3_large",
    tv_seg.DeepLabV3_MobileNet_V3_Large_Weights,
    True,
)
LRASPP = ("lraspp_mobilenet_v3_large", tv_seg.LRASPP_MobileNet_V3_Large_Weights, False)
# deeplabv3_resnet50 is the slowest to count; it runs with ``-m slow``.
MODELS = [
    pytest.param(*FCN, id=FCN[0]),
    pytest.param(*DEEPLAB, id=DEEPLAB[0], marks=pytest.mark.slow),
    pytest.param(*DEEPLAB_MOBILE, id=DEEPLAB_MOBILE[0]),
    pytest.param(*LRASPP, id=LRASPP[0]),
]
RESNET_MODELS = [
    pytest.param(*FCN[:2], id=FCN[0]),
    pytest.param(*DEEPLAB[:2], id=DEEPLAB[0], marks=pytest.mark.slow),
]

# The ResNet-50 backbones use dilation in layer3/layer4 (output stride 8): the aux head sees
# layer3's 1024 channels at 520 / 8 = 65 pixels per side.
RESNET_AUX_INPUT = (1, 1024, 65, 65)
# FCNHead(1024, 21): 3x3 conv 1024 -> 256 (no bias), BN, ReLU, dropout, 1x1 conv 256 -> 21.
RESNET_AUX_MACS = 256 * 1024 * 9 * 65 * 65 + 21 * 256 * 65 * 65


@functools.cache
def _report(name: str, aux: bool) -> ComplexityReport:
    """Counts one model once per test session (shared by the tests below)."""
    kwargs: dict[str, object] = {"weights": None, "weights_backbone": None}
    kwargs["num_classes"] = NUM_CLASSES
    if aux:
        kwargs["aux_loss"] = True
    model = getattr(tv_seg, name)(**kwargs)
    return count_complexity(model, INPUT_SHAPE)


@pytest.mark.parametrize(("name", "weights", "aux"), MODELS)
def test_params_and_macs_match_torchvision_meta(
    name: str, weights: type[WeightsEnum], aux: bool
) -> None:
    """``num_params`` vs ``params_with_aux``, ``_ops`` vs MACs with the aux head running."""
    meta = weights.DEFAULT.meta
    report = _report(name, aux)

    assert report.params_with_aux == meta["num_params"]
    assert report.params == report.params_with_aux  # torchvision's forward runs the aux head
    assert report.gmacs == pytest.approx(meta["_ops"], rel=0.01)
    # The dispatcher-level cross-check agrees (both count convolutions only here).
    assert report.crosscheck_macs == report.macs
    assert not report.disagreement
    assert report.mode == "eval"


@pytest.mark.parametrize(("name", "weights"), RESNET_MODELS)
def test_meta_ops_include_aux_head(name: str, weights: type[WeightsEnum]) -> None:
    """Without the aux head, the count would miss ``_ops`` by more than the 1% tolerance."""
    aux_head = tv_seg.fcn.FCNHead(1024, NUM_CLASSES)
    aux = count_complexity(aux_head, RESNET_AUX_INPUT)
    assert aux.macs == RESNET_AUX_MACS

    meta_ops = weights.DEFAULT.meta["_ops"]
    full = _report(name, True)
    # MACs add up over modules, so the main branch alone is the full count minus the aux head.
    assert full.gmacs - aux.gmacs != pytest.approx(meta_ops, rel=0.01)
    assert full.gmacs == pytest.approx(meta_ops, rel=0.01)


def test_fvcore_element_wise_estimates_are_not_in_ops() -> None:
    """Adding fvcore's BN/upsample/pooling estimates would put LR-ASPP 4% above ``_ops``."""
    report = _report(LRASPP[0], LRASPP[2])
    fvcore_total_gmacs = (report.macs + sum(report.non_mac_ops.values())) / 1e9
    assert set(report.non_mac_ops) == {
        "adaptive_avg_pool2d",
        "batch_norm",
        "upsample_bilinear2d",
    }
    assert fvcore_total_gmacs != pytest.approx(LRASPP[1].DEFAULT.meta["_ops"], rel=0.01)


# FCNHead(40, 21) of deeplabv3_mobilenet_v3_large: 3x3 conv 40 -> 10 (no bias), BN, 1x1 10 -> 21;
# its input is the 40-channel stage at output stride 8.
MOBILE_AUX_PARAMS = 10 * 40 * 9 + 2 * 10 + (21 * 10 + 21)
# FCNHead(1024, 21): 3x3 conv 1024 -> 256 (no bias), BN (2 x 256), 1x1 conv 256 -> 21.
RESNET_AUX_PARAMS = 256 * 1024 * 9 + 2 * 256 + (21 * 256 + 21)
SMALL_SHAPE = (1, 3, 64, 64)  # the aux heads see 64 / 8 = 8 pixels per side


@pytest.mark.parametrize(
    ("arch", "name", "weights", "aux_params", "aux_macs"),
    [
        pytest.param(
            "tv_fcn_resnet50",
            "fcn_resnet50",
            tv_seg.FCN_ResNet50_Weights,
            RESNET_AUX_PARAMS,
            (256 * 1024 * 9 + 21 * 256) * 8 * 8,
            id="tv_fcn_resnet50",
        ),
        pytest.param(
            "tv_deeplabv3_mobilenet_v3_large",
            "deeplabv3_mobilenet_v3_large",
            tv_seg.DeepLabV3_MobileNet_V3_Large_Weights,
            MOBILE_AUX_PARAMS,
            (10 * 40 * 9 + 21 * 10) * 8 * 8,
            id="tv_deeplabv3_mobilenet_v3_large",
        ),
    ],
)
def test_registered_entry_is_the_published_model_minus_aux(
    arch: str, name: str, weights: type[WeightsEnum], aux_params: int, aux_macs: int
) -> None:
    """Our entry's eval network = torchvision's model without its aux head (params and MACs);
    with the aux head, its parameters are exactly ``meta["num_params"]``."""
    num_params = weights.DEFAULT.meta["num_params"]
    entry = count_complexity(architectures.build(arch, num_classes=NUM_CLASSES), SMALL_SHAPE)
    model = getattr(tv_seg, name)(
        weights=None, weights_backbone=None, num_classes=NUM_CLASSES, aux_loss=True
    )
    full = count_complexity(model, SMALL_SHAPE)  # torchvision's forward runs the aux head

    assert entry.params_with_aux == full.params == num_params
    assert entry.params == num_params - aux_params
    assert full.macs - entry.macs == aux_macs
