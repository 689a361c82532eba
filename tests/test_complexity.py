"""Tests for ``bench.complexity``: hand-computed MAC and parameter counts on tiny modules.

Also the ``profile`` command's checks and output (``bench.cli.cmd_profile``), which shows this
module's report.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.complexity import (
    CROSSCHECK_COUNTER,
    ParameterUse,
    count_complexity,
    count_params,
    count_used_params,
    evaluating,
    gmacs,
    macs_to_gflops,
    relative_difference,
)
from bench.errors import ConfigError
from tests.factories import device_error


class TinyNet(nn.Module):
    """conv3x3(3->8) -> BN -> ReLU -> conv1x1(8->4, stride 2) -> bilinear upsample x2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 4, 1, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.conv1(x)))  # (N, 8, H, W)
        x = self.conv2(x)  # (N, 4, H/2, W/2)
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class BaddbmmNet(nn.Module):
    """A 1x1 conv (100 MACs at 1x1x10x10) plus a ``baddbmm`` of ``k`` MACs fvcore cannot see."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        self.register_buffer("a", torch.ones(1, 1, k))
        self.register_buffer("b", torch.ones(1, k, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)  # (1, 1, 10, 10)
        z = torch.baddbmm(torch.zeros(1, 1, 1), self.a, self.b)  # (1, 1, 1)
        return y + z.reshape(1, 1, 1, 1)


class NonTensorOutput(nn.Module):
    """Returns a Python set, which TorchScript tracing (and so fvcore) rejects."""

    def forward(self, x: torch.Tensor) -> set[int]:
        return {1, 2}


def test_single_conv_macs_exact() -> None:
    report = count_complexity(nn.Conv2d(3, 8, 3, padding=1), (1, 3, 10, 10))
    assert report.macs == 8 * 3 * 9 * 100  # C_out * C_in * k*k * H_out*W_out = 21600
    assert report.crosscheck_flops == 2 * 21600
    assert report.crosscheck_macs == 21600
    assert report.rel_diff == 0.0
    assert report.disagreement is False
    assert report.params == 8 * 3 * 9 + 8
    assert report.unsupported_ops == {}


def test_macs_scale_with_batch() -> None:
    report = count_complexity(nn.Conv2d(3, 8, 3, padding=1), (4, 3, 10, 10))
    assert report.macs == 4 * 21600


def test_linear_on_last_dim() -> None:
    # nn.Linear acts on the last dim: 1*3*10 rows x (10 -> 4).
    report = count_complexity(nn.Linear(10, 4), (1, 3, 10, 10))
    assert report.macs == 1 * 3 * 10 * 10 * 4
    assert report.crosscheck_macs == 1200
    assert report.params == 10 * 4 + 4


def test_tiny_net_macs_params_and_non_mac_ops() -> None:
    model = TinyNet()
    model.conv2.requires_grad_(False)
    report = count_complexity(model, (1, 3, 10, 10))
    conv1 = 8 * 3 * 9 * 10 * 10
    conv2 = 4 * 8 * 1 * 5 * 5
    assert report.macs == conv1 + conv2 == 22400
    assert report.crosscheck_macs == 22400
    # fvcore's element-wise estimates: BN in eval = 2 per element (affine), bilinear = 4 per
    # output element. Kept for provenance, excluded from MACs.
    assert report.non_mac_ops == {"batch_norm": 2 * 8 * 100, "upsample_bilinear2d": 4 * 4 * 100}
    assert report.params == (8 * 3 * 9 + 8) + (2 * 8) + (4 * 8 + 4) == 276
    assert report.params_with_aux == 276  # every parameter runs in eval
    assert report.trainable_params == 276 - 36
    assert count_params(model) == (276, 240)
    assert report.input_shape == (1, 3, 10, 10)
    assert report.mode == "eval"
    assert report.counter == "fvcore"
    assert report.crosscheck_counter == CROSSCHECK_COUNTER


def test_attention_counted_by_both_counters() -> None:
    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(16, 48)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            n, c, h, w = x.shape
            tokens = x.flatten(2).transpose(1, 2)  # (N, HW, C)
            q, k, v = self.qkv(tokens).reshape(n, h * w, 3, 2, 8).permute(2, 0, 3, 1, 4)
            return F.scaled_dot_product_attention(q, k, v)  # (N, 2 heads, HW, 8)

    report = count_complexity(Attention(), (2, 16, 4, 4))
    qkv = 2 * 16 * 16 * 48  # 2 images x 16 tokens x (16 -> 48)
    attn = 2 * 2 * 16 * 16 * (8 + 8)  # batch x heads x L x S x (E + Ev)
    assert report.macs == qkv + attn == 40960
    assert report.crosscheck_macs == 40960
    assert "aten::scaled_dot_product_attention" not in report.unsupported_ops


def test_grouped_query_attention_uses_query_heads() -> None:
    class GQA(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q = x.reshape(1, 4, 16, 8)  # 4 query heads
            kv = x.reshape(1, 2, 32, 8)[:, :, :16]  # 2 key/value heads
            return F.scaled_dot_product_attention(q, kv, kv, enable_gqa=True)

    report = count_complexity(GQA(), (1, 32, 4, 4))
    assert report.macs == 4 * 16 * 16 * (8 + 8)
    assert report.crosscheck_macs == report.macs


def test_unsupported_ops_are_reported() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.MaxPool2d(2))
    report = count_complexity(model, (1, 3, 10, 10))
    assert report.unsupported_ops == {"aten::max_pool2d": 1}
    assert report.macs == 21600


@pytest.mark.parametrize(("k", "expected"), [(4, False), (6, True)])
def test_disagreement_flag(k: int, expected: bool) -> None:
    # fvcore has no baddbmm handle; FlopCounterMode counts it. rel_diff = k / (100 + k).
    report = count_complexity(BaddbmmNet(k), (1, 1, 10, 10))
    assert report.macs == 100
    assert report.crosscheck_macs == 100 + k
    assert report.rel_diff == pytest.approx(k / (100 + k))
    assert report.disagreement is expected
    assert report.unsupported_ops.get("aten::baddbmm") == 1


def test_relative_difference() -> None:
    assert relative_difference(0, 0) == 0.0
    assert relative_difference(100, 95) == pytest.approx(0.05)
    assert relative_difference(95, 100) == pytest.approx(0.05)
    assert relative_difference(0, 7) == 1.0


def test_gflops_is_twice_gmacs() -> None:
    assert macs_to_gflops(1_500_000_000) == 3.0
    assert gmacs(1_500_000_000) == 1.5
    report = count_complexity(nn.Conv2d(3, 8, 3, padding=1), (1, 3, 10, 10))
    assert report.gflops == pytest.approx(2 * report.gmacs)
    assert report.gmacs == pytest.approx(21600 / 1e9)


def test_training_flags_restored_per_submodule() -> None:
    model = TinyNet().train()
    model.bn.eval()  # deliberately frozen BN must stay frozen
    count_complexity(model, (1, 3, 10, 10))
    assert model.training is True
    assert model.conv1.training is True
    assert model.bn.training is False


def test_evaluating_restores_on_error() -> None:
    model = TinyNet().train()
    with pytest.raises(KeyError), evaluating(model):
        assert model.training is False
        raise KeyError("boom")
    assert model.training is True


def test_bn_running_stats_untouched() -> None:
    model = TinyNet().train()
    before = model.bn.running_mean.clone()
    count_complexity(model, (1, 3, 10, 10))
    assert torch.equal(model.bn.running_mean, before)
    assert model.bn.num_batches_tracked.item() == 0


def test_to_dict_is_json_ready_with_record_keys() -> None:
    report = count_complexity(TinyNet(), (1, 3, 10, 10))
    d = report.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert set(d) == {
        "params",
        "trainable_params",
        "params_with_aux",
        "macs",
        "gmacs",
        "gflops",
        "input_shape",
        "counter",
        "counter_version",
        "unsupported_ops",
        "non_mac_ops",
        "crosscheck",
        "disagreement",
        "mode",
    }
    assert d["input_shape"] == [1, 3, 10, 10]
    assert d["crosscheck"] == {
        "counter": CROSSCHECK_COUNTER,
        "flops": 44800,
        "macs": 22400,
        "rel_diff": 0.0,
    }


def test_trace_failure_names_model_and_shape() -> None:
    with pytest.raises(RuntimeError, match=r"NonTensorOutput.*\(1, 3, 4, 4\)"):
        count_complexity(NonTensorOutput(), (1, 3, 4, 4))


@pytest.mark.parametrize("shape", [(3, 10, 10), (1, 3, 10, 0), (1, 3, 10.0, 10)])
def test_bad_input_shape(shape: tuple) -> None:
    with pytest.raises(ConfigError, match="input shape must be 4 positive ints"):
        count_complexity(nn.Conv2d(3, 8, 3), shape)  # type: ignore[arg-type]


def test_bad_device() -> None:
    with pytest.raises(ConfigError, match=device_error("meta")):
        count_complexity(nn.Conv2d(3, 8, 3), (1, 3, 10, 10), device="meta")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_requested_without_cuda() -> None:
    with pytest.raises(ConfigError, match=r"torch.cuda.is_available\(\) is False"):
        count_complexity(nn.Conv2d(3, 8, 3), (1, 3, 10, 10), device="cuda")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_counts_on_cuda_match_cpu() -> None:
    model = TinyNet()
    cpu = count_complexity(model, (1, 3, 10, 10))
    with pytest.raises(ValueError, match="Move the model first"):
        count_complexity(model, (1, 3, 10, 10), device="cuda")
    model.cuda()
    gpu = count_complexity(model, (1, 3, 10, 10), device="cuda")
    inferred = count_complexity(model, (1, 3, 10, 10))  # device defaults to the model's
    assert gpu.macs == inferred.macs == cpu.macs == 22400
    assert gpu.crosscheck_macs == 22400
    with pytest.raises(ValueError, match="Move the model first"):
        count_complexity(model, (1, 3, 10, 10), device="cpu")


def test_model_elsewhere_is_reported_with_fix() -> None:
    model = nn.Conv2d(3, 8, 3, device="meta")
    with pytest.raises(ConfigError, match=r"on meta.*Move the model first: model.to\('cpu'\)"):
        count_complexity(model, (1, 3, 10, 10), device="cpu")


def test_half_precision_model_gets_matching_input() -> None:
    report = count_complexity(nn.Conv2d(3, 8, 3, padding=1).bfloat16(), (1, 3, 10, 10))
    assert report.macs == report.crosscheck_macs == 21600


# --------------------------------------------------------------------------- used parameters


class WithAuxHead(nn.Module):
    """A 1x1 main conv (3->4) and a 3x3 auxiliary conv (3->4) that runs in train mode only."""

    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Conv2d(3, 4, 1)
        self.aux = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        out = self.main(x)  # (N, 4, H, W)
        return {"out": out, "aux": self.aux(x)} if self.training else out


MAIN_PARAMS = 4 * 3 + 4  # 16
AUX_PARAMS = 4 * 3 * 9 + 4  # 112


def test_params_cover_the_eval_network_only() -> None:
    """The aux head does not run in eval: it is in ``params_with_aux``, not in ``params``."""
    report = count_complexity(WithAuxHead(), (1, 3, 8, 8))
    assert report.params == report.trainable_params == MAIN_PARAMS
    assert report.params_with_aux == MAIN_PARAMS + AUX_PARAMS == 128
    assert report.macs == 4 * 3 * 64  # the main conv only: same network as params
    assert report.to_dict()["params_with_aux"] == 128


def test_params_of_a_model_whose_eval_runs_the_aux_head() -> None:
    """The count follows what the forward pass runs (torchvision's own models run aux in eval)."""

    class AuxInEval(WithAuxHead):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.main(x) + self.aux(x)

    report = count_complexity(AuxInEval(), (1, 3, 8, 8))
    assert report.params == report.params_with_aux == 128


def test_parameters_used_functionally_by_a_parent_are_counted() -> None:
    """A parent reading a child's weight (``F.conv2d``), its own ``nn.Parameter``, a view
    (``weight[:2]``) and a ``.data`` alias: each is caught; a called module's skipped bias and
    an uncalled module are not."""

    class Parent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.child = nn.Conv2d(3, 4, 1)  # called functionally: weight only, no bias
            self.offset = nn.Parameter(torch.zeros(1, 4, 1, 1))  # the parent's own
            self.sliced = nn.Parameter(torch.ones(5, 4, 1, 1))  # only a view of it is read
            self.aliased = nn.Parameter(torch.ones(1))  # read through .data
            self.never = nn.Linear(7, 7)  # never called

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.conv2d(x, self.child.weight) + self.offset  # (N, 4, H, W)
            y = F.conv2d(y, self.sliced[:2])  # (N, 2, H, W)
            return y * self.aliased.data

    model = Parent()
    report = count_complexity(model, (1, 3, 4, 4))
    assert report.params == 12 + 4 + 20 + 1
    assert report.params_with_aux == 12 + 4 + 4 + 20 + 1 + 56
    with torch.no_grad(), ParameterUse(model) as use:
        model(torch.zeros(1, 3, 4, 4))
    assert use.unused_names(model) == ["child.bias", "never.weight", "never.bias"]


def test_tied_parameters_count_once() -> None:
    """Two modules sharing one weight: 12 elements, not 24 (as ``count_params`` too)."""

    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(3, 4, 1, bias=False)
            self.b = nn.Conv2d(4, 3, 1, bias=False)
            self.b.weight = nn.Parameter(self.a.weight.detach().clone().transpose(0, 1))
            self.c = nn.Conv2d(3, 4, 1, bias=False)
            self.c.weight = self.a.weight  # tied

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.c(self.b(self.a(x)))

    report = count_complexity(Tied(), (1, 3, 4, 4))
    assert report.params == report.params_with_aux == 12 + 12
    assert count_params(Tied()) == (24, 24)


def test_frozen_used_parameters_are_not_trainable() -> None:
    model = WithAuxHead()
    model.main.bias.requires_grad_(False)
    assert count_used_params(model, (1, 3, 8, 8)) == (MAIN_PARAMS, MAIN_PARAMS - 4)


def test_used_params_on_the_meta_device() -> None:
    """Shapes only (how ``bench.papers`` counts big models); identity still matches."""
    with torch.device("meta"):
        model = WithAuxHead()
    assert count_used_params(model, (1, 3, 8, 8)) == (MAIN_PARAMS, MAIN_PARAMS)
    assert model.training  # flags restored


# --------------------------------------------------------------------------- profile command


def test_profile_rejects_wrong_input_channels(capsys: pytest.CaptureFixture[str]) -> None:
    """Checked before building: exit 2 and one line naming arch, channels, shape and the fix."""
    from bench.cli import main

    assert main(["profile", "--arch", "enet", "--input-shape", "1,1,64,64"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: --input-shape 1,1,64,64: enet takes 3-channel input (ArchInfo.in_channels), "
        "found C=1. Pass --input-shape 1,3,64,64.\n"
    )


def test_profile_table_shows_eval_and_aux_params(capsys: pytest.CaptureFixture[str]) -> None:
    """tv_deeplabv3_mobilenet_v3_large's aux head (FCNHead(40, 21) with 10 hidden channels):
    3x3 conv 40 -> 10 without bias, BN (2 x 10), 1x1 conv 10 -> 21 with bias."""
    from torchvision.models.segmentation import DeepLabV3_MobileNet_V3_Large_Weights

    from bench.cli import main

    aux = 10 * 40 * 9 + 2 * 10 + (21 * 10 + 21)
    with_aux = DeepLabV3_MobileNet_V3_Large_Weights.DEFAULT.meta["num_params"]
    argv = ["profile", "--arch", "tv_deeplabv3_mobilenet_v3_large", "--input-shape", "1,3,32,32"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith(f"| params (eval network) | {with_aux - aux:,}") for line in lines)
    assert any(line.startswith(f"| params with aux       | {with_aux:,}") for line in lines)
