"""A suite's ``semisup:`` section: which semi-supervised method trains, with how many labels.

The section may list several methods and labelled fractions (or per-class counts); the suite
then expands into one concrete setting per combination (:meth:`SemiSupConfig.variants`), each
with a setting id of its own. A concrete setting holds one method and one fraction (or count).

The methods (:mod:`bench.train.semisup.methods`):

* ``supervised``: the supervised-only baseline, trained on the labelled subset alone with the
  same steps (the CPS convention: every method and fraction gets the same iterations);
* ``advsemi``: Hung et al., BMVC 2018 (arXiv 1802.07934): a fully convolutional discriminator
  over class-probability maps, an adversarial term and confidence-masked self-training;
* ``gan_ss``: Souly et al., ICCV 2017 (arXiv 1703.09695): a generator of fake images and the
  segmenter as a per-pixel classifier over K classes plus "fake";
* ``decouplednet``: Hong et al., NIPS 2015 (arXiv 1506.04924): a classifier trained with
  image-level labels on every training image, then bridging and segmentation layers on the
  pixel-labelled subset (the ``decouplednet`` architecture only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, get_args

from bench.validation import require_bool, require_choice, require_float, require_int

Method = Literal["supervised", "advsemi", "gan_ss", "decouplednet"]
METHODS: tuple[str, ...] = get_args(Method)


def _as_list(value: object) -> list:
    return list(value) if isinstance(value, list) else [value]


@dataclass(frozen=True)
class SemiSupConfig:
    """The ``semisup:`` section of a suite (see the module docstring).

    Attributes:
        method: A method, or a list of them (one setting each).
        labelled_fraction: Share of the training split with pixel labels, in (0, 1], or a
            list; exclusive with ``labelled_per_class``.
        labelled_per_class: Pixel-labelled images per class (DecoupledNet's 5/10/25), or a list.
        split_seed: Seeds the draw of the labelled subset (the same for every method, so that
            methods at one fraction see the same labelled images).
        image_labels: Whether unlabelled images come with image-level class labels (weak
            supervision, derived from their masks and declared as such in the record).
            ``decouplednet`` always uses them; ``gan_ss`` then conditions its generator on
            them (the paper's weakly supervised variant); ``advsemi`` ignores them.
        unlabelled_batch_size: Unlabelled images per step; 0: ``train.batch_size``.
        lambda_adv: AdvSemi: weight of the adversarial term on labelled images (paper 0.01).
        lambda_semi: AdvSemi: weight of the self-training term (paper 0.1).
        lambda_semi_adv: AdvSemi: weight of the adversarial term on unlabelled images (0.001).
        semi_threshold: AdvSemi: discriminator confidence above which an unlabelled pixel's
            own prediction becomes its target (paper 0.2).
        semi_start: AdvSemi: the step from which the self-training term is on (the paper's
            5,000 of 20,000).
        d_lr: AdvSemi: the discriminator's Adam rate (paper 1e-4, betas (0.9, 0.99)), with
            the segmenter's schedule.
        noise_dim: GAN-SS: length of the generator's noise vector.
        g_lr: GAN-SS: the generator's Adam rate (DCGAN's 2e-4, betas (0.5, 0.999)).
        gamma: GAN-SS: weight of the labelled cross-entropy in the segmenter's loss.
        classify_steps: DecoupledNet: steps of stage 1 (the classifier, image-level labels);
            the rest of ``train.steps`` trains the bridging and segmentation layers.
    """

    method: Method | list[Method] = "supervised"
    labelled_fraction: float | list[float] | None = None
    labelled_per_class: int | list[int] | None = None
    split_seed: int = 0
    image_labels: bool = False
    unlabelled_batch_size: int = 0
    lambda_adv: float = 0.01
    lambda_semi: float = 0.1
    lambda_semi_adv: float = 0.001
    semi_threshold: float = 0.2
    semi_start: int = 0
    d_lr: float = 1e-4
    noise_dim: int = 100
    g_lr: float = 2e-4
    gamma: float = 1.0
    classify_steps: int = 0

    def __post_init__(self) -> None:
        """Checks every value.

        Raises:
            ConfigError: A value is out of range, of the wrong type, or both or neither of
                ``labelled_fraction`` and ``labelled_per_class`` are set.
        """
        for m in _as_list(self.method):
            require_choice("semisup.method", m, METHODS)
        if (self.labelled_fraction is None) == (self.labelled_per_class is None):
            from bench.errors import ConfigError

            raise ConfigError(
                "semisup needs exactly one of labelled_fraction (e.g. 0.125) and "
                f"labelled_per_class (e.g. 5); found labelled_fraction {self.labelled_fraction!r}"
                f" and labelled_per_class {self.labelled_per_class!r}. Set one of them."
            )
        for f in _as_list(self.labelled_fraction) if self.labelled_fraction is not None else []:
            require_float("semisup.labelled_fraction", f, minimum=0.0, strict=True, below=1.0001,
                          fix="Set a share of the training split in (0, 1], e.g. 0.125.")  # fmt: skip
        for n in _as_list(self.labelled_per_class) if self.labelled_per_class is not None else []:
            require_int("semisup.labelled_per_class", n, minimum=1, fix="Set e.g. 5.")
        require_int("semisup.split_seed", self.split_seed, minimum=0)
        require_bool("semisup.image_labels", self.image_labels)
        require_int("semisup.unlabelled_batch_size", self.unlabelled_batch_size, minimum=0)
        for name in ("lambda_adv", "lambda_semi", "lambda_semi_adv", "gamma"):
            require_float(f"semisup.{name}", getattr(self, name), minimum=0.0)
        require_float("semisup.semi_threshold", self.semi_threshold, minimum=0.0, below=1.0)
        for name in ("d_lr", "g_lr"):
            require_float(f"semisup.{name}", getattr(self, name), minimum=0.0, strict=True)
        for name in ("semi_start", "classify_steps"):
            require_int(f"semisup.{name}", getattr(self, name), minimum=0)
        require_int("semisup.noise_dim", self.noise_dim, minimum=1)

    @property
    def concrete(self) -> bool:
        """One method and one fraction (or count): a setting that can run."""
        return not any(
            isinstance(v, list)
            for v in (self.method, self.labelled_fraction, self.labelled_per_class)
        )

    def variants(self) -> Iterator[SemiSupConfig]:
        """The concrete settings, methods outermost, then fractions (or counts) in file order."""
        amounts = (
            [("labelled_fraction", float(f)) for f in _as_list(self.labelled_fraction)]
            if self.labelled_fraction is not None
            else [("labelled_per_class", n) for n in _as_list(self.labelled_per_class)]
        )
        for m in _as_list(self.method):
            for key, amount in amounts:
                yield dataclasses.replace(self, method=m, **{key: amount})

    @property
    def tag(self) -> str:
        """The concrete setting's part of the setting id: ``advsemi-f0.125``, ``decouplednet-pc5``."""
        if self.labelled_fraction is not None:
            return f"{self.method}-f{self.labelled_fraction:g}"
        return f"{self.method}-pc{self.labelled_per_class}"

    def params(self) -> dict[str, float | int | bool]:
        """The method's own settings, as the record's ``semisup.params`` states them."""
        names = {
            "supervised": (),
            "advsemi": ("lambda_adv", "lambda_semi", "lambda_semi_adv", "semi_threshold",
                        "semi_start", "d_lr"),
            "gan_ss": ("noise_dim", "g_lr", "gamma", "image_labels"),
            "decouplednet": ("classify_steps",),
        }[str(self.method)]  # fmt: skip
        return {n: getattr(self, n) for n in names}
