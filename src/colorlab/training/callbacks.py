"""Lightning callbacks: colorized samples as files and in W&B / TensorBoard (configured in
``conf/callbacks/``), and the two a `ColorizationModule` attaches itself: the colour prior of a
loss that needs one, and the thaw of a backbone fine-tuned from epoch N."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from PIL import Image
from rich.progress import track

from colorlab.color import gray_rgb
from colorlab.data.transforms import prepare_batch
from colorlab.errors import ColorlabError, OptionError
from colorlab.metrics import PER_IMAGE_METRICS, per_image_metrics
from colorlab.pictures import labelled_grid, side_by_side, to_pil

if TYPE_CHECKING:
    from colorlab.training.module import ColorizationModule

log = logging.getLogger(__name__)

COLUMNS = ("gray", "prediction", "ground truth")


class ColorizationSamples(L.Callback):
    """Shows how a fixed set of validation images is colorized, every few validation epochs.

    The first ``num_samples`` validation images (the val loader is not shuffled, so always
    the same ones) are written as ``dirpath/epoch_NNN.png`` (rows gray | prediction |
    ground truth) and logged as captioned images, in the first epoch, every
    ``every_n_epochs`` epochs and in the last one. After testing, the first ``table_size``
    test images go to ``dirpath/test.png`` and a W&B table with each image's
    `colorlab.metrics.PER_IMAGE_METRICS` (PSNR, ab MSE, colourfulness, ΔCF) to sort by.
    """

    def __init__(
        self,
        dirpath: str | Path,
        num_samples: int = 8,
        table_size: int = 32,
        every_n_epochs: int = 1,
    ) -> None:
        self.dirpath = Path(dirpath)
        self.num_samples = num_samples
        self.table_size = table_size
        self.every_n_epochs = max(1, int(every_n_epochs))
        self.latest: Path | None = None
        self._rows: list[list[Image.Image]] = []
        self._scores: list[list[float]] = []

    # -- collecting ----------------------------------------------------------------------
    def _collect(self, outputs: Any, batch: dict[str, torch.Tensor], limit: int) -> None:
        wanted = limit - len(self._rows)
        if wanted <= 0 or not isinstance(outputs, dict) or "rgb_pred" not in outputs:
            return
        gray = gray_rgb(batch["L"][:wanted].float())
        for g, p, t in zip(gray, outputs["rgb_pred"][:wanted], batch["rgb"][:wanted], strict=False):
            self._rows.append([to_pil(g), to_pil(p), to_pil(t)])

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._rows = []

    def _due(self, trainer: L.Trainer) -> bool:
        epoch = trainer.current_epoch
        last = trainer.max_epochs is not None and epoch == trainer.max_epochs - 1
        return not trainer.sanity_checking and (epoch % self.every_n_epochs == 0 or last)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if self._due(trainer):
            self._collect(outputs, batch, self.num_samples)

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._rows, self._scores = [], []

    def on_test_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        wanted = self.table_size - len(self._rows)
        self._collect(outputs, batch, self.table_size)
        if wanted > 0 and isinstance(outputs, dict) and "ab_pred" in outputs:
            scores = per_image_metrics(
                outputs["ab_pred"][:wanted],
                batch["ab"][:wanted],
                outputs["rgb_pred"][:wanted],
                batch["rgb"][:wanted],
            )
            columns = torch.stack([scores[name] for name in PER_IMAGE_METRICS], dim=1)
            self._scores += [[round(v, 4) for v in row] for row in columns.tolist()]

    # -- writing -------------------------------------------------------------------------
    def _write(self, name: str) -> Path:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        path = self.dirpath / name
        labelled_grid(self._rows, COLUMNS).save(path)
        self.latest = path
        return path

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._due(trainer) or not self._rows or not trainer.is_global_zero:
            return
        self._write(f"epoch_{trainer.current_epoch:03d}.png")
        panels = [side_by_side(row) for row in self._rows]
        captions = [f"val #{i}: gray | prediction | ground truth" for i in range(len(panels))]
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(
                    key="val/samples", images=panels, caption=captions, step=trainer.global_step
                )
            elif isinstance(logger, TensorBoardLogger):
                for i, panel in enumerate(panels):
                    logger.experiment.add_image(
                        f"val/samples/{i}",
                        torch.from_numpy(np.asarray(panel)),
                        trainer.global_step,
                        dataformats="HWC",
                    )

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._rows or not trainer.is_global_zero:
            return
        self._write("test.png")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                import wandb

                data = [
                    [*(wandb.Image(picture) for picture in row), *scores]
                    for row, scores in zip(self._rows, self._scores, strict=True)
                ]
                columns = [*COLUMNS, *PER_IMAGE_METRICS]
                logger.log_table(key="test/samples", columns=columns, data=data)


def colorization_module(pl_module: L.LightningModule) -> ColorizationModule:
    """The module a callback of colorlab's is attached to (`ColorizationModule`)."""
    from colorlab.training.module import ColorizationModule

    if not isinstance(pl_module, ColorizationModule):
        raise TypeError(f"a colorlab callback needs a ColorizationModule, got {type(pl_module)}")
    return pl_module


class ColourPrior(L.Callback):
    """Before the first epoch, one pass over the training split (each rank over its shard,
    the counts summed over ranks; a data module's ``prior_images`` caps it per rank): the loss's colour prior, its rebalancing weights and the
    start of the head's logits (`ColorizationModule.fit_prior`). A resumed run has its prior
    from the checkpoint and skips the pass."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        module = colorization_module(pl_module)
        if not module.loss_fn.needs_prior:
            return
        datamodule = getattr(trainer, "datamodule", None)  # set by fit; not in Trainer's type
        if datamodule is None or not hasattr(datamodule, "split_dataloader"):
            raise TypeError("a colour prior needs a colorlab ColorizationDataModule")
        loader = datamodule.split_dataloader("train")
        limit = getattr(datamodule, "prior_images", None)  # a sample of a streamed set
        seen = 0

        def batches():
            nonlocal seen
            for raw in track(loader, description="colour prior", transient=True):
                seen += len(raw)
                yield prepare_batch(raw.to(pl_module.device))["ab"]
                if limit is not None and seen >= limit:
                    break

        strategy = trainer.strategy
        prior = module.fit_prior(
            batches(), sum_over_ranks=lambda t: strategy.reduce(t, reduce_op="sum")
        )
        seen = int(strategy.reduce(torch.tensor(seen, device=pl_module.device), reduce_op="sum"))
        log.info(
            "colour prior over %d bins from %d training images (most common bin: %.1f%%)",
            len(prior),
            seen,
            100 * float(prior.max()),
        )


class BackboneThaw(L.Callback):
    """Fine-tunes each backbone from its epoch `Backbone.unfreeze_at` (``freeze_backbone=N``),
    also when a run resumes after it. Refused under DDP, which fixes the trained parameters
    when it wraps the network (a later thaw would train apart on every rank)."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and trainer.world_size > 1:
            thawing = [
                b
                for b in colorization_module(pl_module).net.backbones()
                if b.unfreeze_at and not b.trainable
            ]
            if thawing:
                raise OptionError(
                    "model.freeze_backbone",
                    thawing[0].unfreeze_at,
                    "use true or false with DDP",
                    "(thaw during training) cannot be used with DDP",
                )

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for backbone in colorization_module(pl_module).net.backbones():
            thaw_at = backbone.unfreeze_at
            if thaw_at is not None and trainer.current_epoch >= thaw_at and not backbone.trainable:
                backbone.set_trainable(True)
                backbone.train(pl_module.training)
                log.info(
                    "epoch %d: fine-tuning the %s backbone", trainer.current_epoch, backbone.name
                )


class StopOnNonFiniteLoss(L.Callback):
    """Ends a run whose loss became NaN or infinite with one line naming the epoch, before the
    checkpoint callbacks (which Lightning runs last) could keep that epoch as the best one.
    Reads the epoch means Lightning already reduced: no host sync per step."""

    KEYS = ("train/loss", "val/loss")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._check(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check(trainer)

    def _check(self, trainer: L.Trainer) -> None:
        for key in self.KEYS:
            value = trainer.callback_metrics.get(key)
            if value is not None and not torch.isfinite(torch.as_tensor(value)).all():
                raise ColorlabError(
                    f"{key} became {float(value)} in epoch {trainer.current_epoch}: the run is "
                    "stopped and that epoch is not kept as a checkpoint; lower optimizer.lr or "
                    "the loss weights, or resume from an earlier last.ckpt"
                )
