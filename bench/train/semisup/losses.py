"""The loss terms of the semi-supervised methods, as plain functions of tensors.

Each is checked on tiny tensors against hand-computed values (``tests/test_semisup_losses.py``).

AdvSemi (Hung et al., arXiv 1802.07934, eq. 2-6): the discriminator ``D`` maps class
probabilities ``(N, K, H, W)`` to one logit per pixel, "this map is a ground truth"; it is
trained with binary cross-entropy (ground-truth one-hot maps 1, predictions 0), and the
segmenter gets ``lambda_adv`` times the cross-entropy of ``D(softmax(pred))`` against 1, plus
on unlabelled images the cross-entropy against its own argmax where ``sigmoid(D) > T_semi``.

GAN-SS (Souly et al., arXiv 1703.09695, after Salimans et al. 2016): the segmenter outputs
``K + 1`` logits per pixel, the last for "fake". With ``LSE`` the log-sum-exp over channels,
``log p(fake | x) = l_K - LSE(l)`` and ``log (1 - p(fake | x)) = LSE(l_0..l_{K-1}) - LSE(l)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def one_hot_masks(
    masks: torch.Tensor, k: int, ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground-truth masks as the one-hot probability maps a discriminator sees.

    Args:
        masks: ``(N, H, W)`` integer class ids (``ignore_index`` where unlabelled).
        k: Classes.
        ignore_index: The label that carries no class.

    Returns:
        ``(onehot, valid)``: ``(N, K, H, W)`` float one-hot maps (all zero at ignored pixels)
        and the ``(N, H, W)`` bool mask of labelled pixels.
    """
    valid = masks != ignore_index
    ids = torch.where(valid, masks.long(), torch.zeros_like(masks, dtype=torch.long))
    onehot = F.one_hot(ids, k).permute(0, 3, 1, 2).float() * valid.unsqueeze(1)
    return onehot, valid


def bce_to(logits: torch.Tensor, target: float, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean binary cross-entropy of per-pixel logits against a constant ``target`` (0 or 1).

    Args:
        logits: ``(N, 1, H, W)`` or ``(N, H, W)`` discriminator logits.
        target: 1.0 ("ground truth") or 0.0 ("prediction").
        valid: Pixels that count, shaped like ``logits`` without the channel; None: all.

    Returns:
        The mean over the counted pixels (0 when none counts).
    """
    logits = logits.reshape(logits.shape[0], *logits.shape[-2:])
    per_pixel = F.binary_cross_entropy_with_logits(
        logits, torch.full_like(logits, target), reduction="none"
    )
    if valid is None:
        return per_pixel.mean()
    return (per_pixel * valid).sum() / valid.sum().clamp(min=1)


def confident_targets(
    logits: torch.Tensor, d_logits: torch.Tensor, threshold: float, ignore_index: int
) -> torch.Tensor:
    """AdvSemi's self-training targets: the prediction where the discriminator trusts it.

    Args:
        logits: ``(N, K, H, W)`` segmenter logits of unlabelled images.
        d_logits: ``(N, 1, H, W)`` discriminator logits of their probability maps.
        threshold: ``T_semi``: a pixel is kept where ``sigmoid(d) > threshold``.
        ignore_index: What the other pixels get.

    Returns:
        ``(N, H, W)`` long targets (no gradient).
    """
    with torch.no_grad():
        target = logits.argmax(1)
        keep = torch.sigmoid(d_logits.reshape(target.shape)) > threshold
        return torch.where(keep, target, torch.full_like(target, ignore_index))


def log_p_fake(logits: torch.Tensor) -> torch.Tensor:
    """``log p(fake | x)`` per pixel from ``K + 1`` logits (the last channel is "fake")."""
    return logits[:, -1] - torch.logsumexp(logits, dim=1)


def log_p_real(logits: torch.Tensor) -> torch.Tensor:
    """``log (1 - p(fake | x))`` per pixel from ``K + 1`` logits."""
    return torch.logsumexp(logits[:, :-1], dim=1) - torch.logsumexp(logits, dim=1)


def gan_ss_segmenter_loss(
    labelled: torch.Tensor,
    masks: torch.Tensor,
    unlabelled: torch.Tensor | None,
    fake: torch.Tensor,
    *,
    gamma: float,
    ignore_index: int,
    class_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """GAN-SS's loss of the segmenter (the discriminator of the GAN).

    ``gamma * CE_K(labelled) - mean log(1 - p_fake(unlabelled)) - mean log p_fake(fake)``,
    where ``CE_K`` is the cross-entropy over the K real classes (``log p(y | x, y <= K)``).

    Args:
        labelled: ``(N, K + 1, H, W)`` logits of pixel-labelled images.
        masks: Their ``(N, H, W)`` labels.
        unlabelled: ``(M, K + 1, H, W)`` logits of unlabelled images, or None.
        fake: ``(F, K + 1, H, W)`` logits of generated images.
        gamma: Weight of the labelled term.
        ignore_index: The label that contributes no loss.
        class_weights: Per-class weights of the labelled term, or None.

    Returns:
        The loss and its terms (floats, for logging).
    """
    ce = F.cross_entropy(
        labelled[:, :-1], masks.long(), weight=class_weights, ignore_index=ignore_index
    )
    real = -log_p_real(unlabelled).mean() if unlabelled is not None else ce.new_zeros(())
    gen = -log_p_fake(fake).mean()
    terms = {"ce": ce.item(), "real": real.item(), "fake": gen.item()}
    return gamma * ce + real + gen, terms


def gan_ss_generator_loss(fake: torch.Tensor) -> torch.Tensor:
    """GAN-SS's generator loss: ``-mean log(1 - p_fake(G(z)))`` (fool the segmenter)."""
    return -log_p_real(fake).mean()
