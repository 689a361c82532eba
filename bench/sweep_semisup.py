"""The sweep's side of the semi-supervised track.

It cuts the labelled subset and the unlabelled images, builds GAN-SS's extra "fake" class
and writes the record's ``semisup`` section.

A concrete ``semisup`` setting (one method, one labelled share; see
:class:`bench.train.semisup.SemiSupConfig`) trains on :attr:`SemiSupData.labelled` (the loss
class weights come from it too: only its labels are known) with the method's losses on
:attr:`SemiSupData.unlabelled`; evaluation is the suite's protocol, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset, Subset

from bench.data.info import DatasetInfo
from bench.data.semisup import UnlabelledImages, draw_labelled, sample_ids, split_file
from bench.errors import ConfigError
from bench.records import RunRecord, SemiSupInfo
from bench.train.semisup import (
    DecoupledTraining,
    RealClasses,
    SemiSupConfig,
    SemiSupervision,
    build_method,
)

SPLITS_DIR = "splits"  # inside the results folder


@dataclass(frozen=True)
class SemiSupData:
    """The training split cut by a concrete ``semisup`` setting.

    Attributes:
        cfg: The setting.
        labelled: The pixel-labelled subset (``(image, mask)`` pairs).
        unlabelled: The rest, images only (or with image-level labels).
        split_file: The split file, relative to the results folder.
        split_sha256: Its sha256.
    """

    cfg: SemiSupConfig
    labelled: Dataset
    unlabelled: UnlabelledImages
    split_file: str
    split_sha256: str

    def section(self) -> SemiSupInfo:
        """The record's ``semisup`` section."""
        c = self.cfg
        return SemiSupInfo(
            method=str(c.method),
            labelled_fraction=c.labelled_fraction,  # type: ignore[arg-type]
            labelled_per_class=c.labelled_per_class,  # type: ignore[arg-type]
            labelled_images=len(self.labelled),
            unlabelled_images=len(self.unlabelled),
            split_file=self.split_file,
            split_sha256=self.split_sha256,
            split_seed=c.split_seed,
            image_labels=uses_image_labels(c),
            params=c.params(),
        )

    def supervision(
        self, num_classes: int, size: tuple[int, int], batch_size: int, model: object = None
    ) -> SemiSupervision:
        """What :func:`bench.train.train` takes: the method and the unlabelled images.

        The supervised-only counterpart of DecoupledNet (``model`` has ``set_stage``) keeps
        its two stages, on the labelled images alone (no unlabelled images, no weak labels).
        """
        method = build_method(self.cfg, num_classes, size)
        arch = getattr(model, "model", model)
        if method is None and callable(getattr(arch, "set_stage", None)):
            return SemiSupervision(DecoupledTraining(self.cfg), None, batch_size)
        unlabelled = None if method is None else self.unlabelled
        return SemiSupervision(method, unlabelled, self.cfg.unlabelled_batch_size or batch_size)


def uses_image_labels(cfg: SemiSupConfig) -> bool:
    """Whether the unlabelled images come with image-level labels (weak supervision)."""
    return cfg.method == "decouplednet" or (cfg.method == "gan_ss" and cfg.image_labels)


def split_name(dataset: str, cfg: SemiSupConfig) -> str:
    """``<dataset>__f0.125__seed0`` or ``<dataset>__pc5__seed0``: the split file's stem."""
    share = (
        f"f{cfg.labelled_fraction:g}"
        if cfg.labelled_fraction is not None
        else f"pc{cfg.labelled_per_class}"
    )
    return f"{dataset}__{share}__seed{cfg.split_seed}"


def prepare(
    cfg: SemiSupConfig | None,
    train_set: Dataset,
    info: DatasetInfo,
    dataset: str,
    results_dir: Path,
) -> SemiSupData | None:
    """Cuts ``train_set`` into the labelled subset (from its split file) and the rest.

    Args:
        cfg: The suite's concrete ``semisup`` setting, or None (a supervised suite).
        train_set: The training split.
        info: Its dataset's description.
        dataset: The dataset's name (names the split file).
        results_dir: The results folder (split files live in its ``splits/``).

    Returns:
        The cut, or None without ``cfg``.

    Raises:
        ConfigError: ``cfg`` lists several methods or shares (expand the suite first), or
            the split file does not fit the training split.
    """
    if cfg is None:
        return None
    if not cfg.concrete:
        raise ConfigError(
            "semisup lists several methods or labelled shares; a sweep runs one of them. "
            "Expand the suite first (SuiteConfig.variants(); `run` does it)."
        )
    k = info.num_classes
    drawn = draw_labelled(
        train_set, num_classes=k, fraction=cfg.labelled_fraction,  # type: ignore[arg-type]
        per_class=cfg.labelled_per_class, split_seed=cfg.split_seed,  # type: ignore[arg-type]
    )  # fmt: skip
    ids = sample_ids(train_set)
    folder = Path(results_dir) / SPLITS_DIR
    path, labelled, sha = split_file(folder, split_name(dataset, cfg), [ids[i] for i in drawn], ids)
    chosen = set(labelled)
    rest = [i for i in range(len(train_set)) if i not in chosen]
    return SemiSupData(
        cfg=cfg,
        labelled=Subset(train_set, labelled),
        unlabelled=UnlabelledImages(train_set, rest, k, image_labels=uses_image_labels(cfg)),
        split_file=path.relative_to(results_dir).as_posix(),
        split_sha256=sha,
    )


def head_classes(cfg: SemiSupConfig | None, num_classes: int) -> int:
    """Outputs the segmenter is built with: K, or K + 1 for GAN-SS's "fake" class."""
    return num_classes + 1 if cfg is not None and cfg.method == "gan_ss" else num_classes


def wrap(cfg: SemiSupConfig | None, model: object) -> object:
    """The model the sweep trains and evaluates: GAN-SS's drops its "fake" class in eval."""
    if cfg is not None and cfg.method == "gan_ss":
        return RealClasses(model)  # type: ignore[arg-type]
    return model


def semisup_archs(cfg: SemiSupConfig | None, archs: list[str]) -> list[str]:
    """The architectures a concrete ``semisup`` setting trains, of ``archs`` (printing the others).

    ``decouplednet`` trains the ``decouplednet`` entry alone (its stages are the entry's);
    ``advsemi`` and ``gan_ss`` need the segmenter's logits, so entries that compute their own
    losses (``train_needs_targets``, e.g. Mask R-CNN and DecoupledNet) are left out;
    ``supervised`` (and a suite without ``semisup``) trains every one.
    """
    import architectures

    if cfg is None or cfg.method == "supervised":
        return archs
    if cfg.method == "decouplednet":
        keep = [a for a in archs if a == "decouplednet"]
    else:
        keep = [a for a in archs if not architectures.get_info(a).train_needs_targets]
    for a in archs:
        if a not in keep:
            print(f"not run: {a} with semisup method {cfg.method} (see bench.sweep_semisup)")
    return keep


def with_section(data: SemiSupData | None, record: RunRecord) -> RunRecord:
    """``record`` with its ``semisup`` section (unchanged outside the track)."""
    return record if data is None else record.replace(semisup=data.section())


def supervision(
    data: SemiSupData | None, num_classes: int, size: tuple[int, int], batch_size: int,
    model: object,
) -> SemiSupervision | None:  # fmt: skip
    """:meth:`SemiSupData.supervision`, or None outside the track."""
    return None if data is None else data.supervision(num_classes, size, batch_size, model)
