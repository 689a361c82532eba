"""Mixed-precision training (a suite's ``train.amp``): autocast and, for fp16, loss scaling.

* ``off``: fp32 throughout (the default; every committed result).
* ``bf16``: the forward pass and the loss run under ``torch.autocast(device_type,
  torch.bfloat16)``, on CUDA (where the GPU supports bf16) and on the CPU. bf16 keeps fp32's
  exponent range, so no loss scaling is needed.
* ``fp16``: ``torch.autocast("cuda", torch.float16)`` with a ``torch.amp.GradScaler`` (dynamic
  loss scaling: fp16 gradients underflow without it). **Refused on the CPU**: CPU kernels gain
  nothing from fp16 over bf16 (most fall back to fp32 or run slower), and loss scaling there
  would be a configuration no one tests; use ``bf16`` on the CPU.

The backward pass follows autocast's casts; the optimiser updates fp32 parameters. Evaluation
and precise BN run in fp32 (the trained model is evaluated like every other), so ``amp`` changes
the training numbers, not how they are scored.
"""

from __future__ import annotations

import contextlib

import torch

from bench.errors import ConfigError
from bench.train.config import Amp

AMP_DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_amp(amp: Amp, device: str | torch.device) -> None:
    """Checks that ``amp`` can run on ``device`` (before any model is built).

    Args:
        amp: ``"off"``, ``"bf16"`` or ``"fp16"``.
        device: Where training runs.

    Raises:
        ConfigError: fp16 on a CPU, or bf16 on a GPU without bf16 support.
    """
    kind = torch.device(device).type
    if amp == "fp16" and kind != "cuda":
        raise ConfigError(
            f"train.amp: fp16 needs a CUDA device; this run trains on {kind}. CPU autocast "
            f"has no loss scaling here and gains nothing over bf16. Fix: set train.amp: bf16 "
            f"(or off) for CPU runs, or run with --device cuda."
        )
    if amp == "bf16" and kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(
            f"train.amp: bf16 is not supported by {torch.cuda.get_device_name(device)}. Fix: "
            f"set train.amp: fp16 (with loss scaling) or off."
        )


def autocast(amp: Amp, device: str | torch.device) -> contextlib.AbstractContextManager[object]:
    """The autocast context of the training forward pass and loss.

    Args:
        amp: ``"off"`` (a context that does nothing), ``"bf16"`` or ``"fp16"``.
        device: Where training runs.

    Returns:
        ``torch.autocast(device_type, dtype)`` or a null context.
    """
    if amp == "off":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=AMP_DTYPES[amp])


def grad_scaler(amp: Amp, device: str | torch.device) -> torch.amp.GradScaler | None:
    """The gradient scaler fp16 needs on CUDA; None for ``off`` and ``bf16``.

    Args:
        amp: The mixed precision.
        device: Where training runs (:func:`check_amp` has refused fp16 off CUDA).

    Returns:
        A ``torch.amp.GradScaler("cuda")`` or None.
    """
    if amp == "fp16" and torch.device(device).type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None
