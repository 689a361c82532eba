"""Semi-supervised methods as pieces of the one training loop (:func:`bench.train.train`).

A method replaces the loop's loss with its own (:meth:`SemiMethod.loss`, called for every
micro-batch with the labelled batch and a batch of unlabelled images) and may update networks
of its own after the segmenter's optimiser step (:meth:`SemiMethod.after_step`: AdvSemi's
discriminator, GAN-SS's generator). Everything else is the loop's: the schedule (the extra
networks follow the segmenter's learning-rate factor), mixed precision, the saved state (a
method's networks and optimisers are saved with it, :meth:`SemiMethod.state_dict`) and the
TensorBoard scalars. The supervised-only baseline is no method: the loop trains the labelled
subset alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from bench.errors import ConfigError
from bench.train.losses import segmentation_loss, summed_losses
from bench.train.semisup.config import SemiSupConfig
from bench.train.semisup.losses import (
    bce_to,
    confident_targets,
    gan_ss_generator_loss,
    gan_ss_segmenter_loss,
    one_hot_masks,
)
from bench.train.semisup.nets import FCDiscriminator, Generator


def _main(out: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
    return out["out"] if isinstance(out, Mapping) else out


def _split(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """An unlabelled batch: images, or ``(images, image_labels)``."""
    if isinstance(batch, (list, tuple)):
        return batch[0], batch[1]
    return batch, None


class SemiMethod:
    """The interface the training loop calls (see the module docstring)."""

    name = ""

    def setup(self, model: nn.Module, device: str | torch.device) -> None:
        """Builds the method's own networks and optimisers on ``device`` (called once)."""

    def loss(
        self,
        net: nn.Module,
        images: torch.Tensor,
        masks: torch.Tensor,
        unlabelled: Any,
        *,
        step: int,
        ignore_index: int,
        aux_weights: Mapping[str, float] | None,
        class_weights: torch.Tensor | None,
    ) -> torch.Tensor:
        """The segmenter's loss on one labelled micro-batch and one unlabelled batch."""
        raise NotImplementedError

    def after_step(self, net: nn.Module, step: int, lr_factor: float) -> None:
        """Runs after the segmenter's optimiser step ``step`` (0-based)."""

    def _parts(self) -> dict[str, Any]:
        """The method's networks and optimisers by name (built by :meth:`setup`)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """The method's networks and optimisers, for the saved training state."""
        return {name: part.state_dict() for name, part in self._parts().items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Puts back what :meth:`state_dict` returned."""
        for name, part in self._parts().items():
            part.load_state_dict(state[name])


class AdvSemi(SemiMethod):
    """Hung et al.'s adversarial learning with confidence-masked self-training.

    Per step: the segmenter's loss is the cross-entropy on labelled images plus
    ``lambda_adv * BCE(D(softmax(pred_l)), 1)`` over labelled pixels, and on unlabelled images
    ``lambda_semi_adv * BCE(D(softmax(pred_u)), 1)`` plus, from ``semi_start``,
    ``lambda_semi * CE(pred_u, argmax pred_u)`` where ``sigmoid(D) > semi_threshold``. The
    discriminator is frozen meanwhile; after the segmenter's step it takes one Adam step on
    ``(BCE(D(pred), 0) + BCE(D(one-hot ground truth), 1)) / 2`` with the step's (detached)
    predictions of labelled and unlabelled images (the authors' ``--D-remain`` default).

    Args:
        cfg: The concrete setting (its ``lambda_*``, ``semi_threshold``, ``semi_start``, ``d_lr``).
        num_classes: K (the discriminator's input channels).
    """

    name = "advsemi"

    def __init__(self, cfg: SemiSupConfig, num_classes: int) -> None:
        self.cfg, self.k = cfg, num_classes
        self.d: FCDiscriminator | None = None
        self.opt: torch.optim.Optimizer | None = None
        self._pending: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = []

    def setup(self, model: nn.Module, device: str | torch.device) -> None:
        """See :meth:`SemiMethod.setup`."""
        self.d = FCDiscriminator(self.k).to(device)
        self.opt = torch.optim.Adam(self.d.parameters(), lr=self.cfg.d_lr, betas=(0.9, 0.99))
        self.ignore = 255

    def loss(
        self,
        net: nn.Module,
        images: torch.Tensor,
        masks: torch.Tensor,
        unlabelled: Any,
        *,
        step: int,
        ignore_index: int,
        aux_weights: Mapping[str, float] | None,
        class_weights: torch.Tensor | None,
    ) -> torch.Tensor:
        """See :meth:`SemiMethod.loss`."""
        assert self.d is not None, "setup() first"
        c = self.cfg
        self.d.requires_grad_(False)  # the segmenter's loss does not train D
        out = net(images)
        loss = segmentation_loss(out, masks, ignore_index=ignore_index, aux_weights=aux_weights,
                                 class_weights=class_weights)  # fmt: skip
        probs = torch.softmax(_main(out).float(), 1)
        _, valid = one_hot_masks(masks, self.k, ignore_index)
        loss = loss + c.lambda_adv * bce_to(self.d(probs), 1.0, valid)
        probs_u = None
        if unlabelled is not None:
            u, _ = _split(unlabelled)
            logits_u = _main(net(u.to(images.device))).float()
            probs_u = torch.softmax(logits_u, 1)
            d_u = self.d(probs_u)
            loss = loss + c.lambda_semi_adv * bce_to(d_u, 1.0)
            if c.lambda_semi > 0 and step >= c.semi_start:
                target = confident_targets(logits_u, d_u, c.semi_threshold, ignore_index)
                if bool((target != ignore_index).any()):
                    loss = loss + c.lambda_semi * F.cross_entropy(
                        logits_u, target, ignore_index=ignore_index
                    )
        self._pending.append((probs.detach(), masks, None if probs_u is None else probs_u.detach()))
        self.ignore = ignore_index
        return loss

    def after_step(self, net: nn.Module, step: int, lr_factor: float) -> None:
        """See :meth:`SemiMethod.after_step`."""
        assert self.d is not None and self.opt is not None
        self.d.requires_grad_(True)
        self.opt.zero_grad(set_to_none=True)
        for probs, masks, probs_u in self._pending:
            onehot, valid = one_hot_masks(masks, self.k, self.ignore)
            fake = bce_to(self.d(probs), 0.0, valid)
            if probs_u is not None:  # predictions of both kinds are "not ground truth"
                n, m = probs.shape[0], probs_u.shape[0]
                fake = (n * fake + m * bce_to(self.d(probs_u), 0.0)) / (n + m)
            real = bce_to(self.d(onehot), 1.0, valid)
            ((fake + real) / (2 * len(self._pending))).backward()
        self._pending.clear()
        for group in self.opt.param_groups:
            group["lr"] = self.cfg.d_lr * lr_factor
        self.opt.step()

    def _parts(self) -> dict[str, Any]:
        return {"discriminator": self.d, "optimizer": self.opt}


class GanSS(SemiMethod):
    """Souly et al.'s GAN whose discriminator is the segmenter (K classes plus "fake").

    The segmenter (built with ``K + 1`` outputs) is trained on
    :func:`~bench.train.semisup.losses.gan_ss_segmenter_loss` with one batch of generated
    images per micro-batch (as many as labelled images, drawn from the global generator, so
    seeded and saved with the state); after its step the generator takes one Adam step on
    :func:`~bench.train.semisup.losses.gan_ss_generator_loss` with fresh noise. With
    ``image_labels`` the generator is conditioned on the image-level class vectors of the
    step's unlabelled images (the paper's weakly supervised variant).

    Args:
        cfg: The concrete setting (``noise_dim``, ``g_lr``, ``gamma``, ``image_labels``).
        num_classes: K (the segmenter has K + 1 outputs).
        size: ``(H, W)`` of the generated images (the training size).
    """

    name = "gan_ss"

    def __init__(self, cfg: SemiSupConfig, num_classes: int, size: tuple[int, int]) -> None:
        self.cfg, self.k, self.size = cfg, num_classes, size
        self.g: Generator | None = None
        self.opt: torch.optim.Optimizer | None = None
        self._pending: list[tuple[int, torch.Tensor | None]] = []

    def setup(self, model: nn.Module, device: str | torch.device) -> None:
        """See :meth:`SemiMethod.setup`."""
        labels = self.k if self.cfg.image_labels else 0
        self.g = Generator(self.size, self.cfg.noise_dim, labels).to(device)
        self.opt = torch.optim.Adam(self.g.parameters(), lr=self.cfg.g_lr, betas=(0.5, 0.999))
        self.device = device

    def _noise(self, n: int, cond: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = torch.randn(n, self.cfg.noise_dim).to(self.device)
        if cond is not None:
            cond = cond[torch.arange(n) % cond.shape[0]].to(self.device)  # as many as images
        return z, cond

    def loss(
        self,
        net: nn.Module,
        images: torch.Tensor,
        masks: torch.Tensor,
        unlabelled: Any,
        *,
        step: int,
        ignore_index: int,
        aux_weights: Mapping[str, float] | None,
        class_weights: torch.Tensor | None,
    ) -> torch.Tensor:
        """See :meth:`SemiMethod.loss`."""
        assert self.g is not None, "setup() first"
        u, cond = _split(unlabelled) if unlabelled is not None else (None, None)
        if not self.cfg.image_labels:
            cond = None
        z, cond = self._noise(images.shape[0], cond)
        with torch.no_grad():
            fake = self.g(z, cond)
        labelled = _main(net(images)).float()
        unl = None if u is None else _main(net(u.to(images.device))).float()
        gen = _main(net(fake)).float()
        loss, _ = gan_ss_segmenter_loss(labelled, masks, unl, gen, gamma=self.cfg.gamma,
                                        ignore_index=ignore_index, class_weights=class_weights)  # fmt: skip
        self._pending.append((images.shape[0], cond))
        return loss

    def after_step(self, net: nn.Module, step: int, lr_factor: float) -> None:
        """See :meth:`SemiMethod.after_step`."""
        assert self.g is not None and self.opt is not None
        self.opt.zero_grad(set_to_none=True)
        trainable = [p for p in net.parameters() if p.requires_grad]
        for p in trainable:  # the generator's loss trains the generator alone
            p.requires_grad_(False)
        try:
            for n, cond in self._pending:
                z, c = self._noise(n, cond)
                loss = gan_ss_generator_loss(_main(net(self.g(z, c))).float())
                (loss / len(self._pending)).backward()
        finally:
            for p in trainable:
                p.requires_grad_(True)
        self._pending.clear()
        for group in self.opt.param_groups:
            group["lr"] = self.cfg.g_lr * lr_factor
        self.opt.step()

    def _parts(self) -> dict[str, Any]:
        return {"generator": self.g, "optimizer": self.opt}


class DecoupledTraining(SemiMethod):
    """DecoupledNet's two stages (Hong et al., section 4), for the ``decouplednet`` entry.

    Steps ``[0, classify_steps)``: the classifier alone, a multi-label loss on image-level
    labels, with the labelled batch (its labels derived from its masks) and the unlabelled
    batch (its declared image-level labels) together. The remaining steps: the classifier
    fixed, the bridging and segmentation layers on the labelled batch alone, one
    (image, class) pair per image (the entry's ``segment`` stage). Without unlabelled images
    (the supervised-only counterpart) stage 1 sees the labelled batch alone.

    Args:
        cfg: The concrete setting (``classify_steps``).
    """

    name = "decouplednet"

    def __init__(self, cfg: SemiSupConfig) -> None:
        self.cfg = cfg

    def setup(self, model: nn.Module, device: str | torch.device) -> None:
        """See :meth:`SemiMethod.setup`."""
        arch = getattr(model, "model", model)
        if not callable(getattr(arch, "set_stage", None)):
            raise ConfigError(
                f"semisup method decouplednet trains the decouplednet architecture; found "
                f"{type(arch).__name__}, which has no set_stage(). Fix: use archs: "
                f"[decouplednet] with this method, or another method."
            )
        self.arch = arch

    def loss(
        self,
        net: nn.Module,
        images: torch.Tensor,
        masks: torch.Tensor,
        unlabelled: Any,
        *,
        step: int,
        ignore_index: int,
        aux_weights: Mapping[str, float] | None,
        class_weights: torch.Tensor | None,
    ) -> torch.Tensor:
        """See :meth:`SemiMethod.loss`."""
        if step < self.cfg.classify_steps:
            self.arch.set_stage("classify")
            losses = [summed_losses(net(images, targets=masks, ignore_index=ignore_index))]
            if unlabelled is not None:
                u, labels = _split(unlabelled)
                if labels is None:
                    raise ConfigError(
                        "semisup method decouplednet needs image-level labels for its "
                        "unlabelled images; set semisup.image_labels: true."
                    )
                d = int(getattr(net, "divisor", 1))  # PadCrop's: the entry's input divisor
                u = F.pad(u.to(images.device), (0, -u.shape[-1] % d, 0, -u.shape[-2] % d))
                objects = labels.to(images.device)[:, list(self.arch.object_classes)]
                losses.append(summed_losses(self.arch(u, image_labels=objects)))
            return sum(losses) / len(losses)
        self.arch.set_stage("segment")
        return summed_losses(net(images, targets=masks, ignore_index=ignore_index))


@dataclass
class SemiSupervision:
    """What :func:`bench.train.train` needs for a semi-supervised run.

    Attributes:
        method: The method's loss and extra updates; None for the supervised-only baseline
            (the loop's own loss on the labelled set).
        unlabelled: Unlabelled training images (a dataset of images, or of
            ``(image, image_labels)``); None: none used.
        batch_size: Unlabelled images per micro-batch.
    """

    method: SemiMethod | None
    unlabelled: Dataset | None = None
    batch_size: int = 1


def build_method(cfg: SemiSupConfig, num_classes: int, size: tuple[int, int]) -> SemiMethod | None:
    """The method object of a concrete ``semisup`` setting (None for ``supervised``).

    Args:
        cfg: The concrete setting.
        num_classes: The dataset's K (GAN-SS's segmenter then has K + 1 outputs).
        size: ``(H, W)`` of the training images (GAN-SS generates at that size).
    """
    if cfg.method == "advsemi":
        return AdvSemi(cfg, num_classes)
    if cfg.method == "gan_ss":
        return GanSS(cfg, num_classes, size)
    if cfg.method == "decouplednet":
        return DecoupledTraining(cfg)
    return None
