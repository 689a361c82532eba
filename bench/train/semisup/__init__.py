"""Semi-supervised training: the ``semisup:`` settings, the methods' losses and networks.

* :mod:`~bench.train.semisup.config`: :class:`SemiSupConfig`, a suite's ``semisup:`` section;
* :mod:`~bench.train.semisup.losses`: the loss terms, as functions of tensors;
* :mod:`~bench.train.semisup.nets`: AdvSemi's discriminator, GAN-SS's generator, the
  ``K + 1``-output wrapper;
* :mod:`~bench.train.semisup.methods`: each method as a piece of the one training loop.

Like the rest of :mod:`bench.train`, it imports no suite, runner or data module: the labelled
subset and the unlabelled images come in as datasets (:mod:`bench.data.semisup` draws them).
"""

from bench.train.semisup.config import METHODS, Method, SemiSupConfig
from bench.train.semisup.methods import (
    AdvSemi,
    DecoupledTraining,
    GanSS,
    SemiMethod,
    SemiSupervision,
    build_method,
)
from bench.train.semisup.nets import FCDiscriminator, Generator, RealClasses

__all__ = [
    "METHODS",
    "AdvSemi",
    "DecoupledTraining",
    "FCDiscriminator",
    "GanSS",
    "Generator",
    "Method",
    "RealClasses",
    "SemiMethod",
    "SemiSupConfig",
    "SemiSupervision",
    "build_method",
]
