"""The LightningModule: training / validation / test steps, loss, metrics, optimizer."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from torch import Tensor

from colorlab.color import to_rgb
from colorlab.errors import ColorlabError
from colorlab.metrics import ColorizationMetrics


class ColorizationModule(L.LightningModule):
    """Trains a `colorlab.models.Colorizer` on batches from a `ColorizationDataModule`.

    Everything needed to rebuild the network is stored in the checkpoint's hyperparameters
    (Hydra configs as plain dicts), so ``ColorizationModule.from_checkpoint(path)`` suffices.

    Args:
        model: config of the network (``_target_`` a builder in `colorlab.models`).
        loss: config of the loss on ab, e.g. ``{"_target_": "torch.nn.MSELoss"}``.
        optimizer: partial config of the optimizer (``_partial_: true``).
        scheduler: partial config of an LR scheduler, or None. A dict with ``scheduler``
            and Lightning keys (``monitor``, ``interval``) is also accepted.
        image_size: the square size the data set feeds (kept for inference).
        channels_last: ``"auto"`` (on CUDA), true or false.
    """

    def __init__(
        self,
        model: dict[str, Any],
        loss: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        image_size: int | None = None,
        channels_last: bool | str = "auto",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = instantiate(model)
        self.loss_fn = instantiate(loss)
        self.image_size = image_size or self.net.native_size
        self.val_metrics = ColorizationMetrics()
        self.test_metrics = ColorizationMetrics(ssim=True, auc=True)

    def forward(self, L: Tensor) -> Tensor:
        """L (B×1×H×W, 0..100) -> ab_pred (B×2×H×W in (-1, 1))."""
        return self.net(L)

    # -- steps ---------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        ab_pred = self(batch["L"])
        loss = self.loss_fn(ab_pred.float(), batch["ab"])
        self.log(
            "train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(ab_pred)
        )
        return loss

    def _evaluate(
        self, batch: dict[str, Tensor], stage: str, metrics: ColorizationMetrics
    ) -> dict[str, Tensor]:
        ab_pred = self(batch["L"]).float()
        loss = self.loss_fn(ab_pred, batch["ab"])
        rgb_pred = to_rgb(batch["L"], ab_pred)
        metrics.update(ab_pred, batch["ab"], rgb_pred, batch["rgb"])
        self.log(
            f"{stage}/loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(ab_pred),
        )
        return {"loss": loss, "ab_pred": ab_pred.detach(), "rgb_pred": rgb_pred.detach()}

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        return self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        return self._evaluate(batch, "test", self.test_metrics)

    def _log_metrics(self, stage: str, metrics: ColorizationMetrics) -> None:
        values = metrics.compute()
        metrics.reset()
        self.log(f"{stage}/psnr", values.pop("psnr"), prog_bar=True)
        self.log_dict({f"{stage}/{name}": value for name, value in values.items()})

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val", self.val_metrics)

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test", self.test_metrics)

    # -- set-up --------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        wanted = self.hparams.channels_last
        if wanted is True or (wanted == "auto" and self.device.type == "cuda"):
            self.net.to(memory_format=torch.channels_last)

    def on_train_epoch_start(self) -> None:
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], on_step=False, on_epoch=True)

    def configure_optimizers(self) -> Any:
        trainable = [p for p in self.net.parameters() if p.requires_grad]
        optimizer = instantiate(self.hparams.optimizer)(params=trainable)
        if not self.hparams.scheduler:
            return optimizer
        config = dict(self.hparams.scheduler)
        lightning_keys = {
            k: config.pop(k) for k in ("monitor", "interval", "frequency") if k in config
        }
        scheduler = instantiate(config)(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, **lightning_keys}}

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(
        cls, path: str | Path, map_location: str | torch.device = "cpu"
    ) -> ColorizationModule:
        """Rebuild a trained module from a checkpoint file alone.

        A frozen pretrained feature extractor is restored from the checkpoint, never
        downloaded again. Raises `ColorlabError` for a missing, corrupt or foreign file.
        """
        path = Path(path)
        if not path.is_file():
            raise ColorlabError(f"checkpoint {path} does not exist")
        try:
            checkpoint = torch.load(path, map_location=map_location, weights_only=False)
        except Exception as error:
            raise ColorlabError(
                f"checkpoint {path} cannot be read ({type(error).__name__}: {error})"
            ) from error
        hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
        if not hparams or "model" not in hparams or "state_dict" not in checkpoint:
            raise ColorlabError(
                f"{path} is not a colorlab checkpoint (no model config or weights in it)"
            )
        model = copy.deepcopy(dict(hparams["model"]))
        if "pretrained" in model:
            model["pretrained"] = False  # the frozen weights are in the state dict
        module = cls(**{**hparams, "model": model})
        try:
            module.load_state_dict(checkpoint["state_dict"])
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise ColorlabError(f"{path} does not match its model config ({first})") from error
        return module.eval()
