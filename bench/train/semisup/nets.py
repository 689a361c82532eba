"""The networks the semi-supervised methods train beside the segmenter.

* :class:`FCDiscriminator`: AdvSemi's fully convolutional discriminator (Hung et al., arXiv
  1802.07934, section 3.1 and their released ``model/discriminator.py``): five 4x4 stride-2
  convolutions with 64, 128, 256, 512 and 1 channels, leaky ReLU (0.2) between them, the
  one-channel output upsampled bilinearly to the input size.
* :class:`Generator`: GAN-SS's image generator, DCGAN-style (Radford et al., arXiv 1511.06434):
  noise (and, for the weakly supervised variant, the image-level class vector) through a
  linear layer to a ``(8c, h/16, w/16)`` map, four 4x4 stride-2 transposed convolutions with
  batch norm and ReLU, ``tanh`` scaled to the range of normalised images, centre-cropped to
  the training size.
* :class:`RealClasses`: wraps a segmenter built with ``K + 1`` outputs so that, out of
  training, it returns the K real classes (GAN-SS's "fake" channel is for training only).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_RANGE = 2.5
"""The generator's output lies in ``(-2.5, 2.5)``: normalised images (ImageNet statistics) lie
in about ``[-2.1, 2.6]``."""


class FCDiscriminator(nn.Module):
    """Per-pixel "is this a ground-truth map" logits for ``(N, K, H, W)`` probability maps.

    Args:
        num_classes: K, the input channels.
        width: Channels of the first convolution (doubled by each of the next three).
    """

    def __init__(self, num_classes: int, width: int = 64) -> None:
        super().__init__()
        chans = [num_classes, width, width * 2, width * 4, width * 8]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            layers += [nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(chans[-1], 1, 4, stride=2, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        """``(N, 1, H, W)`` logits at the input's size."""
        out = self.net(probs)
        return F.interpolate(out, size=probs.shape[-2:], mode="bilinear", align_corners=False)


class Generator(nn.Module):
    """DCGAN generator of ``(N, 3, H, W)`` images from noise (and class vectors).

    Args:
        size: ``(H, W)`` of the images.
        noise_dim: Length of the noise vector.
        num_labels: Length of the class vector it is conditioned on (0: none).
        width: Channels of the last hidden map (the first has 8x as many).
    """

    def __init__(
        self, size: tuple[int, int], noise_dim: int = 100, num_labels: int = 0, width: int = 32
    ) -> None:
        super().__init__()
        self.size, self.noise_dim, self.num_labels = tuple(size), noise_dim, num_labels
        self.start = (math.ceil(size[0] / 16), math.ceil(size[1] / 16))
        c = width * 8
        self.fc = nn.Linear(noise_dim + num_labels, c * self.start[0] * self.start[1])
        self.bn0 = nn.BatchNorm2d(c)
        ups: list[nn.Module] = []
        for i in range(4):
            cin, cout = c >> i, (c >> (i + 1)) if i < 3 else 3
            ups.append(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=i == 3))
            if i < 3:
                ups += [nn.BatchNorm2d(cout), nn.ReLU()]
        self.ups = nn.Sequential(*ups)

    def forward(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images for ``(N, noise_dim)`` noise and ``(N, num_labels)`` class vectors."""
        z = noise if labels is None else torch.cat([noise, labels.to(noise.dtype)], 1)
        x = self.fc(z).view(z.shape[0], -1, *self.start)
        x = IMAGE_RANGE * torch.tanh(self.ups(F.relu(self.bn0(x))))
        h, w = self.size
        top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
        return x[..., top : top + h, left : left + w]


class RealClasses(nn.Module):
    """A segmenter with a ``K + 1``-th "fake" output that, out of training, returns K classes.

    In train mode the full ``K + 1`` logits come back (GAN-SS's losses need them); in eval mode
    the last channel is dropped, so evaluation, timing and the confusion matrix see the dataset's
    K classes. ``model`` and ``param_root`` name the wrapped architecture as
    ``bench.models.PadCrop`` does.

    Args:
        net: The segmenter, built with ``K + 1`` outputs (usually a ``PadCrop``).
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        inner = getattr(net, "param_root", "")
        self.param_root = f"net.{inner}" if inner else "net"

    @property
    def model(self) -> nn.Module:
        """The architecture inside (with its ``K + 1`` head)."""
        return getattr(self.net, "model", self.net)

    def forward(
        self, x: torch.Tensor, *args: Any, **kwargs: Any
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        """The wrapped segmenter's output; out of training without the "fake" channel."""
        out = self.net(x, *args, **kwargs)
        if self.training:
            return out
        if isinstance(out, dict):
            return {k: v[:, :-1] for k, v in out.items()}
        return out[:, :-1]
