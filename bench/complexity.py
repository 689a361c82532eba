"""Parameter and multiply-accumulate (MAC) counts of a model at a fixed input shape.

Conventions (see ``STYLE.md``, "FLOPs"):

* The stored quantity is ``macs``: an integer count of multiply-accumulates. One multiply-add is
  one MAC. fvcore calls this a "flop"; torchvision's ``meta["_ops"]`` ("GFLOPS") is the same
  quantity in units of 1e9.
* ``GFLOPs = 2 x GMACs`` is computed in exactly one place, :func:`macs_to_gflops`.

How the two counters are made comparable:

* The primary counter is fvcore's ``FlopCountAnalysis`` (a TorchScript trace), with one extra
  handle for ``aten::scaled_dot_product_attention`` (fvcore 0.1.5 has none and would otherwise
  list it as unsupported and count it as zero): MACs of ``Q K^T`` plus ``A V``, i.e.
  ``batch * L * S * (E + Ev)``, the same formula as ``torch.utils.flop_counter.sdpa_flop_count``.
  Causal masking is not discounted, as in PyTorch's counter.
* fvcore's default handles also estimate element-wise work that is not a multiply-accumulate of
  a matrix product: ``batch_norm`` (2 per element in eval mode), ``group_norm``/``layer_norm``
  (5 per element), ``instance_norm``, ``upsample_nearest2d`` (1 per output), ``upsample_bilinear2d``
  (4 per output), ``adaptive_avg_pool2d`` (1 per input) and ``grid_sampler``. These are kept in the
  report as ``non_mac_ops`` (fvcore's estimate per operator) but are **not** part of ``macs``:
  batch norm folds into the preceding convolution at inference time, and resampling/pooling are
  memory-bound. ``macs`` therefore covers convolutions, linear layers, matrix products, einsum
  and attention, which is exactly what torchvision's ``_ops`` and most segmentation papers report
  and what the cross-check counts.
* The cross-check is ``torch.utils.flop_counter.FlopCounterMode`` (dispatcher level; counts
  ``mm``/``addmm``/``bmm``/``baddbmm``/convolution/fused attention at 2 FLOPs per MAC), run on a
  second forward pass. Its registry has no entry for the CPU fused attention kernel
  (``aten::_scaled_dot_product_flash_attention_for_cpu``), so one is added with the same formula.
  ``rel_diff`` compares fvcore ``macs`` with ``crosscheck_flops / 2``; more than 5% sets
  ``disagreement`` (usually a matrix operator that one of the counters does not know).

Both counts run the model in eval mode with gradients disabled. Models whose ``forward`` runs
auxiliary heads in eval mode (torchvision's segmentation models with ``aux_loss=True``) are
counted with those heads, because that is what the forward pass computes.

Parameters: one network behind both numbers. ``params`` counts the parameters that the counted
eval-mode forward pass actually reads, so it describes the same network as ``macs`` (and as the
timed one); ``params_with_aux`` counts every registered parameter, including auxiliary heads
that only run in training (the training-time model). The used parameters are recorded during
the cross-check pass by a ``TorchDispatchMode`` that notes every tensor an ATen operator
receives. Working at the dispatcher rather than with module forward hooks means a parameter is
caught however it is used: through its own module, functionally by a parent module
(``F.conv2d(x, self.child.weight)``, a positional embedding added in the parent's ``forward``),
or through a view (``weight.t()``, ``weight[0]``: the view op receives the parameter itself);
and a module that is called but skips one of its parameters does not count it. A parameter is
matched by identity, and on a real device also by its storage (so an alias made with
``.data``, which no operator sees being made, still counts). Parameters shared between modules
(tied weights) are counted once, as ``nn.Module.parameters()`` lists them once.

This module is pure measurement: modules in, numbers out. It imports neither datasets nor
training code.
"""

from __future__ import annotations

import importlib.metadata
import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from bench.devices import parse_device
from bench.errors import ConfigError

with warnings.catch_warnings():
    # fvcore.nn applies the deprecated torch.jit.script to its focal loss at import time.
    warnings.simplefilter("ignore", FutureWarning)
    from fvcore.nn import FlopCountAnalysis
    from fvcore.nn.jit_handles import get_shape

COUNTER = "fvcore"
CROSSCHECK_COUNTER = "torch.utils.flop_counter.FlopCounterMode"
DISAGREEMENT_THRESHOLD = 0.05
"""Relative difference between the two counters above which ``disagreement`` is set."""

MAC_OPERATORS = frozenset(
    {
        "conv",
        "addmm",
        "bmm",
        "einsum",
        "linear",
        "matmul",
        "mm",
        "scaled_dot_product_attention",
    }
)
"""fvcore ``by_operator()`` keys whose counts are multiply-accumulates of matrix products."""


def macs_to_gflops(macs: float) -> float:
    """Converts a multiply-accumulate count to GFLOPs (the only place where 2 x MACs is applied).

    Args:
        macs: Number of multiply-accumulates (one multiply-add = one MAC).

    Returns:
        ``2 * macs / 1e9``: billions of floating-point operations, counting the multiply and the
        add separately.
    """
    return 2.0 * macs / 1e9


def gmacs(macs: float) -> float:
    """Converts a multiply-accumulate count to GMACs.

    Args:
        macs: Number of multiply-accumulates.

    Returns:
        ``macs / 1e9``.
    """
    return macs / 1e9


def count_params(model: nn.Module) -> tuple[int, int]:
    """Counts every registered parameter of a model (shared parameters once).

    This is the training-time count (``params_with_aux`` of a :class:`ComplexityReport`):
    auxiliary heads that the eval forward pass does not run are included.

    Args:
        model: The module to inspect.

    Returns:
        ``(total, trainable)``: number of parameter elements, and of those with
        ``requires_grad=True``.
    """
    params = list(model.parameters())  # deduplicated by nn.Module
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return total, trainable


def _storage_key(tensor: torch.Tensor) -> int | None:
    """The address of a tensor's storage, or None where it says nothing (meta, empty)."""
    if tensor.device.type == "meta":
        return None
    try:
        ptr = tensor.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):  # tensor subclasses without a plain storage
        return None
    return ptr or None


class ParameterUse(TorchDispatchMode):
    """Records which parameters of a model the operators run inside the ``with`` block read.

    Every tensor argument of every ATen operator is checked against the model's parameters, by
    identity and (off the meta device) by storage. See the module docstring for why this sits
    at the dispatcher rather than on module hooks.

    Args:
        model: The module whose parameters to watch.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self._params = list(model.parameters())  # shared parameters listed once
        self._by_id = {id(p): i for i, p in enumerate(self._params)}
        self._by_storage: dict[int, list[int]] = {}
        for i, p in enumerate(self._params):
            key = _storage_key(p)
            if key is not None:
                self._by_storage.setdefault(key, []).append(i)
        self._used: set[int] = set()

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        """Notes the parameters among the operator's arguments, then runs it unchanged."""
        kwargs = kwargs or {}
        flat, _ = tree_flatten((args, kwargs))
        for value in flat:
            if not isinstance(value, torch.Tensor):
                continue
            index = self._by_id.get(id(value))
            if index is not None:
                self._used.add(index)
            elif self._by_storage:
                key = _storage_key(value)
                if key is not None:
                    self._used.update(self._by_storage.get(key, ()))
        return func(*args, **kwargs)

    def counts(self) -> tuple[int, int]:
        """``(total, trainable)`` elements of the parameters read so far."""
        used = [self._params[i] for i in sorted(self._used)]
        return sum(p.numel() for p in used), sum(p.numel() for p in used if p.requires_grad)

    def unused_names(self, model: nn.Module) -> list[str]:
        """Names (as in ``model.named_parameters()``) of the parameters not read so far."""
        used = {id(self._params[i]) for i in self._used}
        return [name for name, p in model.named_parameters() if id(p) not in used]


def count_used_params(model: nn.Module, input_shape: Sequence[int]) -> tuple[int, int]:
    """Counts the parameters one eval-mode forward pass at ``input_shape`` reads.

    The model runs in eval mode under ``torch.no_grad()`` on an all-zero input in the dtype of
    its first floating-point parameter, on the device its tensors are on (the meta device
    works too: parameters are matched by identity there). Training flags are restored.

    Args:
        model: The module to run.
        input_shape: ``(N, C, H, W)`` of the input.

    Returns:
        ``(total, trainable)`` elements of the parameters the pass read (shared ones once).

    Raises:
        ConfigError: ``input_shape`` is not four positive ints.
    """
    shape = validate_input_shape(input_shape)
    example = torch.zeros(shape, device=model_device(model), dtype=_input_dtype(model))
    with evaluating(model), torch.no_grad(), ParameterUse(model) as use:
        model(example)
    return use.counts()


def _input_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first floating-point parameter (float32 without one)."""
    float_params = [p for p in model.parameters() if p.is_floating_point()]
    return float_params[0].dtype if float_params else torch.float32


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Puts ``model`` in eval mode and restores every submodule's own ``training`` flag on exit.

    Restoring per submodule (rather than calling ``model.train(previous)``) keeps deliberately
    frozen submodules, such as batch norm held in eval mode during fine-tuning, as they were.

    Args:
        model: The module to switch to eval mode.

    Yields:
        The same module, in eval mode.
    """
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, flag in flags:
            module.training = flag


def check_model_device(model: nn.Module, device: str | torch.device) -> torch.device:
    """Checks that all parameters and buffers of ``model`` live on ``device``.

    Measurement functions never move a caller's model; they ask the caller to do it.

    Args:
        model: The module to check.
        device: The device the measurement will run on, e.g. ``"cpu"`` or ``"cuda:0"``.

    Returns:
        ``device`` as a ``torch.device`` (a bare ``"cuda"`` resolved to the current CUDA index).

    Raises:
        ConfigError: If the device is not ``cpu``/``cuda[:N]``, CUDA is requested but not
            available (both from :func:`bench.devices.parse_device`), or a tensor of the model
            is elsewhere.
    """
    dev = parse_device(device)
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.device != dev:
            raise ConfigError(
                f"{type(model).__name__} tensor {name!r} is on {tensor.device}, but the "
                f"measurement device is {dev}. Move the model first: model.to({str(dev)!r})."
            )
    return dev


def validate_input_shape(input_shape: Sequence[int], *, rank: int = 4) -> tuple[int, ...]:
    """Validates a shape such as ``(N, C, H, W)``.

    Args:
        input_shape: The shape to check.
        rank: Required number of dimensions.

    Returns:
        The shape as a tuple of ints.

    Raises:
        ConfigError: If the shape does not have ``rank`` positive integer entries.
    """
    shape = tuple(input_shape)
    if len(shape) != rank or not all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape
    ):
        names = "(N, C, H, W)" if rank == 4 else "(C, H, W)" if rank == 3 else f"rank {rank}"
        raise ConfigError(
            f"input shape must be {rank} positive ints {names}; got {input_shape!r}. "
            f"Pass e.g. {(1, 3, 512, 512)[-rank:]!r}."
        )
    return shape


def _sdpa_macs(query: Sequence[int], key: Sequence[int], value: Sequence[int]) -> int:
    """MACs of ``softmax(Q K^T) V`` for shapes ``(..., L, E)``, ``(..., S, E)``, ``(..., S, Ev)``.

    The batch is taken from the query (its heads, under grouped-query attention, are the ones
    computed); key and value heads are broadcast to them.
    """
    *batch, length_q, embed = query
    length_kv, embed_v = key[-2], value[-1]
    n = math.prod(batch)
    return n * length_q * length_kv * embed + n * length_q * length_kv * embed_v


def _fvcore_sdpa_handle(inputs: list[Any], outputs: list[Any]) -> int:
    """Counts ``aten::scaled_dot_product_attention`` for fvcore's jit: MACs of QK^T and AV."""
    shapes = [get_shape(v) for v in inputs[:3]]
    if any(s is None for s in shapes):
        raise ValueError("aten::scaled_dot_product_attention traced without complete shapes.")
    query, key, value = shapes
    return _sdpa_macs(query, key, value)


def _flop_counter_sdpa_cpu(
    query_shape: Sequence[int],
    key_shape: Sequence[int],
    value_shape: Sequence[int],
    *args: Any,
    out_shape: Any = None,
    **kwargs: Any,
) -> int:
    """FlopCounterMode formula for the CPU fused attention kernel (2 FLOPs per MAC)."""
    return 2 * _sdpa_macs(query_shape, key_shape, value_shape)


def _crosscheck_mapping() -> dict[Any, Any]:
    """Extra FlopCounterMode formulas for kernels missing from PyTorch's registry."""
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return {} if op is None else {op: _flop_counter_sdpa_cpu}


@dataclass(frozen=True)
class ComplexityReport:
    """Parameter and MAC counts of one model at one input shape.

    Attributes:
        params: Parameter elements that the counted eval-mode forward pass reads: the network
            that ``macs`` describes (auxiliary heads that run only in training are excluded).
        trainable_params: Of ``params``, the elements with ``requires_grad=True``.
        params_with_aux: Every registered parameter element, auxiliary heads included (the
            training-time model; what ``count_params`` returns).
        macs: Multiply-accumulates of convolutions, linear layers, matrix products, einsum and
            attention for one forward pass at ``input_shape`` (fvcore).
        gmacs: ``macs / 1e9``.
        gflops: ``2 * macs / 1e9`` (via :func:`macs_to_gflops`).
        input_shape: ``(N, C, H, W)`` the counts refer to.
        counter: Name of the primary counter (``"fvcore"``).
        counter_version: Installed version of the primary counter.
        unsupported_ops: Operators fvcore saw but has no handle for, with occurrence counts.
            Most are element-wise (``aten::add_``, activations) and perform no MACs; a matrix
            operator here means ``macs`` undercounts, which the cross-check should reveal.
        non_mac_ops: fvcore's estimate of element-wise work (batch norm, upsampling, adaptive
            pooling, ...) per operator, in fvcore units; excluded from ``macs``.
        crosscheck_counter: Name of the second counter.
        crosscheck_flops: FLOPs from the second counter (2 per MAC).
        crosscheck_macs: ``crosscheck_flops // 2`` (every formula of that counter is 2 x MACs).
        rel_diff: ``|macs - crosscheck_macs| / max(macs, crosscheck_macs)`` (0 when both are 0).
        disagreement: ``rel_diff > DISAGREEMENT_THRESHOLD`` (5%).
        mode: Module mode during counting (always ``"eval"``).
    """

    params: int
    trainable_params: int
    params_with_aux: int
    macs: int
    gmacs: float
    gflops: float
    input_shape: tuple[int, int, int, int]
    counter: str
    counter_version: str
    unsupported_ops: dict[str, int]
    crosscheck_counter: str
    crosscheck_flops: int
    crosscheck_macs: int
    rel_diff: float
    disagreement: bool
    mode: str = "eval"
    non_mac_ops: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Returns the run record's ``complexity`` object (JSON-ready values only)."""
        return {
            "params": self.params,
            "trainable_params": self.trainable_params,
            "params_with_aux": self.params_with_aux,
            "macs": self.macs,
            "gmacs": self.gmacs,
            "gflops": self.gflops,
            "input_shape": list(self.input_shape),
            "counter": self.counter,
            "counter_version": self.counter_version,
            "unsupported_ops": dict(self.unsupported_ops),
            "non_mac_ops": dict(self.non_mac_ops),
            "crosscheck": {
                "counter": self.crosscheck_counter,
                "flops": self.crosscheck_flops,
                "macs": self.crosscheck_macs,
                "rel_diff": self.rel_diff,
            },
            "disagreement": self.disagreement,
            "mode": self.mode,
        }


def relative_difference(a: float, b: float) -> float:
    """Returns ``|a - b| / max(|a|, |b|)``, or 0.0 when both are zero.

    Args:
        a: First count.
        b: Second count.

    Returns:
        The symmetric relative difference in ``[0, 1]`` for non-negative inputs.
    """
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


def _fvcore_counts(
    model: nn.Module, example: torch.Tensor
) -> tuple[int, dict[str, int], dict[str, int]]:
    """Runs fvcore and splits its per-operator counts into MACs and element-wise estimates."""
    analysis = (
        FlopCountAnalysis(model, example)
        .set_op_handle("aten::scaled_dot_product_attention", _fvcore_sdpa_handle)
        .unsupported_ops_warnings(False)
        .uncalled_modules_warnings(False)
    )
    by_operator = analysis.by_operator()
    macs = int(round(sum(v for k, v in by_operator.items() if k in MAC_OPERATORS)))
    non_mac = {k: int(round(v)) for k, v in sorted(by_operator.items()) if k not in MAC_OPERATORS}
    unsupported = {k: int(v) for k, v in sorted(analysis.unsupported_ops().items())}
    return macs, non_mac, unsupported


def _crosscheck_pass(model: nn.Module, example: torch.Tensor) -> tuple[int, tuple[int, int]]:
    """Runs one forward pass under PyTorch's dispatcher-level counters.

    Returns its FLOPs (2 per MAC, ``FlopCounterMode``) and the ``(total, trainable)`` elements
    of the parameters that pass read.
    """
    with (
        FlopCounterMode(display=False, custom_mapping=_crosscheck_mapping()) as counter,
        ParameterUse(model) as use,
    ):
        model(example)
    return int(counter.get_total_flops()), use.counts()


def model_device(model: nn.Module) -> torch.device:
    """Returns the device of the model's first parameter or buffer (CPU for a stateless model).

    Args:
        model: The module to inspect.

    Returns:
        The device its tensors live on (:func:`check_model_device` verifies that all agree).
    """
    for tensor in [*model.parameters(), *model.buffers()]:
        return tensor.device
    return torch.device("cpu")


def count_complexity(
    model: nn.Module,
    input_shape: tuple[int, int, int, int],
    device: str | torch.device | None = None,
) -> ComplexityReport:
    """Counts parameters and MACs of ``model`` for one forward pass at ``input_shape``.

    The model runs in eval mode under ``torch.no_grad()`` (TorchScript tracing, which fvcore
    uses, is exercised under ``no_grad``; ``inference_mode`` adds nothing for counting), on an
    all-zero input in the dtype of the model's first floating-point parameter (the counts do not
    depend on values). Every submodule's training flag is restored afterwards; the model is
    neither moved nor otherwise modified.

    ``params`` counts the parameters that forward pass reads (see the module docstring), so
    it and ``macs`` describe one network; ``params_with_aux`` counts every registered one.

    Args:
        model: The module to count; its parameters and buffers must all be on one device.
        input_shape: ``(N, C, H, W)`` of the input tensor.
        device: Device to run the counting forward passes on; default: where the model is.
            The counts do not depend on it.

    Returns:
        A :class:`ComplexityReport`.

    Raises:
        ConfigError: If ``input_shape`` is not four positive ints, ``device`` is not a usable
            device, or the model's tensors are not all on ``device``.
        RuntimeError: If either counter fails (e.g. fvcore cannot trace the model); the message
            names the model class and the input shape, and the original error is chained.
    """
    shape = validate_input_shape(input_shape)
    dev = check_model_device(model, model_device(model) if device is None else device)
    with_aux = count_params(model)[0]
    example = torch.zeros(shape, device=dev, dtype=_input_dtype(model))  # e.g. a .half() model
    name = type(model).__name__

    with evaluating(model), torch.no_grad(), warnings.catch_warnings():
        # TorchScript tracing (used by fvcore) is deprecated and chatty; the counts are unaffected.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            macs, non_mac, unsupported = _fvcore_counts(model, example)
        except Exception as exc:
            raise RuntimeError(
                f"fvcore could not count {name} at input shape {shape}: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            cross_flops, (total, trainable) = _crosscheck_pass(model, example)
        except Exception as exc:
            raise RuntimeError(
                f"{CROSSCHECK_COUNTER} could not count {name} at input shape {shape}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    cross_macs = cross_flops // 2
    rel = relative_difference(macs, cross_macs)
    return ComplexityReport(
        params=total,
        trainable_params=trainable,
        params_with_aux=with_aux,
        macs=macs,
        gmacs=gmacs(macs),
        gflops=macs_to_gflops(macs),
        input_shape=shape,  # type: ignore[arg-type]  # validated to rank 4 above
        counter=COUNTER,
        counter_version=importlib.metadata.version("fvcore"),
        unsupported_ops=unsupported,
        crosscheck_counter=CROSSCHECK_COUNTER,
        crosscheck_flops=cross_flops,
        crosscheck_macs=cross_macs,
        rel_diff=rel,
        disagreement=rel > DISAGREEMENT_THRESHOLD,
        mode="eval",
        non_mac_ops=non_mac,
    )
