"""One process of the data-parallel equivalence checks (not a test module).

``python tests/distributed_worker.py OUT`` runs one plain process;
``python -m torch.distributed.run --standalone --nproc-per-node 2 tests/distributed_worker.py
OUT`` runs two CPU processes over gloo. Either way the same work happens, through the harness's
own ``bench.train.train`` and ``bench.evaluate.evaluate``:

* **train**: a network without BatchNorm (so no statistic is computed per rank) is trained with
  SGD for :data:`STEPS` steps at the global batch :data:`BATCH` on the synthetic set (no ignored
  pixels, no class weights: every rank's loss is a mean over the same number of pixels);
* **evaluate**: a fixed, seeded network with BatchNorm in eval mode is scored on :data:`VAL`
  validation images in batches of :data:`EVAL_BATCH` (uneven shares: 4 batches of 3, 3, 3, 2);
* **resume**: a network with dropout (random draws of each rank) trains with
  ``checkpoint_every: 3``; the state saved after step 3 is copied aside as the run goes on (as if
  the run had been killed there), and a fresh model resumes from the copy.

Rank 0 writes ``OUT`` (``torch.save`` of tensors and lists) for the test to compare.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import distributed  # noqa: E402
from bench.data import build_dataset  # noqa: E402
from bench.evaluate import evaluate  # noqa: E402
from bench.train import TrainConfig, train  # noqa: E402

SIZE, TRAIN_IMAGES, VAL, EVAL_BATCH = (32, 32), 16, 11, 3
STEPS, BATCH, EVERY = 6, 4, 3
CFG = TrainConfig(
    steps=STEPS, batch_size=BATCH, optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-4
)


def net(num_classes: int, norm: bool, dropout: bool = False) -> nn.Module:
    """A small fully convolutional network, with or without BatchNorm (and dropout)."""
    layers: list[nn.Module] = [nn.Conv2d(3, 8, 3, padding=1)]
    if norm:
        layers.append(nn.BatchNorm2d(8))
    layers += [nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout2d(0.3))
    layers.append(nn.Conv2d(8, num_classes, 1))
    return nn.Sequential(*layers)


class CopyStateAt:
    """A scalar writer that copies the saved training state aside when ``step`` is logged."""

    def __init__(self, state: Path, copy: Path, step: int) -> None:
        self.state, self.copy, self.step = state, copy, step

    def add_scalar(self, tag: str, value: float, step: int | None = None) -> None:
        if tag == "train/loss" and step == self.step:
            shutil.copy(self.state, self.copy)

    def close(self) -> None:
        pass


def resume_check(train_set, info, ranks, folder: Path) -> dict:
    """The dropout network trained once straight through and once resumed after step 3."""
    cfg = TrainConfig(steps=STEPS, batch_size=BATCH, lr=0.01, checkpoint_every=EVERY)
    state, copy = folder / "state.pt", folder / "state_at_3.pt"
    weights = []
    for resume in (False, True):
        torch.manual_seed(2)
        model = net(info.num_classes, norm=False, dropout=True)
        copier = CopyStateAt(state, copy, EVERY + 1) if ranks.is_main and not resume else None
        result = train(
            model,
            train_set,
            cfg,
            ignore_index=info.ignore_index,
            progress=False,
            state_file=copy if resume else state,
            resume=resume,
            run_name="resume",
            scalars=copier,
            ranks=ranks,
        )
        weights.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    return {"whole": weights[0], "resumed": weights[1], "resumed_from": result.resumed_from_step}


def main(out: Path) -> None:
    torch.set_num_threads(1)
    ranks = distributed.ranks_from_env()
    ranks = distributed.start(ranks, "cpu")
    train_set, info = build_dataset("synthetic", split="train", size=SIZE, num_samples=TRAIN_IMAGES)
    val_set, _ = build_dataset("synthetic", split="val", size=SIZE, num_samples=VAL)

    torch.manual_seed(0)
    model = net(info.num_classes, norm=False)
    result = train(
        model, train_set, CFG, ignore_index=info.ignore_index, progress=False, ranks=ranks
    )

    torch.manual_seed(1)
    fixed = net(info.num_classes, norm=True)
    with torch.no_grad():  # eval-mode statistics that are not the identity
        fixed[1].running_mean.uniform_(-0.5, 0.5)
        fixed[1].running_var.uniform_(0.5, 2.0)
    ev = evaluate(
        fixed, val_set, info, batch_size=EVAL_BATCH, num_samples=5, progress=False, ranks=ranks
    )
    resumed = resume_check(train_set, info, ranks, out.parent)
    if ranks.is_main:
        torch.save(
            {
                "world_size": ranks.world_size if ranks.torchrun else None,
                "recorded_world_size": result.world_size,
                "final_loss": result.final_loss,
                "loss_curve": list(result.loss_curve),
                "weights": {k: v.detach().clone() for k, v in model.state_dict().items()},
                "matrix": torch.from_numpy(ev.matrix),
                "num_images": ev.num_images,
                "miou": ev.metrics.miou,
                "samples": torch.from_numpy(ev.sample_preds),
                **resumed,
            },
            out,
        )
    distributed.stop(ranks)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
