"""`ColorizationModule`, the one LightningModule: one `model_step` for the training,
validation and test steps, the optimizers, and loading a trained module from its checkpoint.
What a run also always needs (the colour prior, a backbone's thaw) are callbacks it attaches
itself (`configure_callbacks`)."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from colorlab.color import to_rgb
from colorlab.configs import build
from colorlab.errors import OptionError
from colorlab.loading import (
    load_weights,
    model_without_download,
    read_checkpoint,
)
from colorlab.losses import Batch, ColorizationLoss
from colorlab.losses.base import total
from colorlab.metrics import ColorizationMetrics, seed_accuracy
from colorlab.models import ColorizerBase
from colorlab.models.heads import HeadOutput
from colorlab.training.callbacks import BackboneThaw, ColourPrior, StopOnNonFiniteLoss

log = logging.getLogger(__name__)

#: ``compile=``: true (= default) or a `torch.compile` mode.
COMPILE_MODES = (True, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class ColorizationModule(L.LightningModule):
    """Trains a `colorlab.models.ColorizerBase` on batches of a `ColorizationDataModule`.

    Everything needed to rebuild the network is stored in the checkpoint's hyperparameters
    (configs as plain dicts), so ``ColorizationModule.from_checkpoint(path)`` suffices.

    Args:
        model: config of the network (``_target_`` a builder in `colorlab.models`); its
            head is the one the loss asks for (`colorlab.losses.ColorizationLoss.head`).
        loss: config of a `colorlab.losses.ColorizationLoss`, e.g.
            ``{"_target_": "colorlab.losses.RegressionLoss", "kind": "mse"}``.
        optimizer: partial config of the optimizer (``_partial_: true``), plus
            ``backbone_lr_scale`` for fine-tuned backbones.
        scheduler: partial config of an LR scheduler, or None; Lightning's keys
            (``monitor``, ``interval``, ``frequency``) may sit beside its own.
        image_size: the square size the data set feeds (kept for inference).
        channels_last: ``"auto"`` (on CUDA), true or false.
        compile: `torch.compile` the network for fitting (a `COMPILE_MODES` mode name, or
            false); checkpoints are the same either way.
    """

    net: ColorizerBase
    loss_fn: ColorizationLoss

    def __init__(
        self,
        model: dict[str, Any],
        loss: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        image_size: int | None = None,
        channels_last: bool | str = "auto",
        compile: str | bool = False,
    ) -> None:
        super().__init__()
        if compile not in (False, *COMPILE_MODES):
            raise OptionError(
                "compile", compile, "use false, true or one of " + ", ".join(COMPILE_MODES[1:])
            )
        if channels_last not in (True, False, "auto"):
            raise OptionError("channels_last", channels_last, "use auto, true or false")
        self.save_hyperparameters()
        self.loss_fn = build(loss, "loss")
        if not isinstance(self.loss_fn, ColorizationLoss):
            raise OptionError(
                "loss._target_",
                loss.get("_target_"),
                "name a colorlab.losses.ColorizationLoss (see conf/loss/)",
            )
        self.net = build(model, "model", head=self.loss_fn.head)
        self._warn_untrained_prediction(model)
        # An adversarial term trains its critic with its own optimizer, step by step.
        self.automatic_optimization = self.loss_fn.adversarial is None
        self.image_size = image_size or self.net.native_size
        self.val_metrics = ColorizationMetrics()
        self.test_metrics = ColorizationMetrics(ssim=True, auc=True)

    def _warn_untrained_prediction(self, model: dict[str, Any]) -> None:
        """A head whose prediction only the terms on ab train (SIGGRAPH17's regression branch
        under a classification loss): without them (and not fine-tuned) it would stay as
        initialised."""
        trains_ab = (
            self.loss_fn.l1_weight
            or self.loss_fn.colorfulness_weight
            or (self.loss_fn.perceptual is not None or self.loss_fn.adversarial is not None)
        )
        if self.net.head.predicts_by_ab_terms and not trains_ab and not model.get("pretrained"):
            log.warning(
                "%s predicts with its regression branch, which loss=classification trains only "
                "through loss.l1_weight (the paper's combination; experiment=siggraph17 uses "
                "1.16): with none its predictions stay those of an untrained branch",
                model.get("_target_"),
            )

    def forward(self, L: Tensor) -> Tensor:
        """L (B×1×H×W, 0..100) -> ab_pred (B×2×H×W in (-1, 1)), through `predict_ab`."""
        return self.net.predict_ab(L)

    def logged_metrics(self) -> list[str]:
        """Every name fitting logs, ``train/…`` and ``val/…``: what a checkpoint or scheduler
        ``monitor`` and a search's ``optimized_metric`` may name."""
        terms = [f"train/loss_{name}" for name in self.loss_fn.term_names()]
        train = ["train/loss", *terms, "train/seed_accuracy", "train/lr"]
        return [*train, "val/loss", *(f"val/{name}" for name in self.val_metrics.names())]

    # -- steps ---------------------------------------------------------------------------
    def model_step(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor], HeadOutput]:
        """The network on ``batch["L"]`` (and ``batch["hints"]``, simulated in training for a
        network with hints) and its loss: ``(loss, named terms, raw output)``."""
        output = self.net(batch["L"], batch.get("hints"))
        terms = self.loss_fn.terms(output, batch)
        return total(terms), terms, output

    def _log_loss(self, stage: str, loss: Tensor, terms: dict[str, Tensor], size: int) -> None:
        # Means over every rank's images, reduced once per epoch (sync_dist).
        options: dict[str, Any] = {
            "on_step": False,
            "on_epoch": True,
            "batch_size": size,
            "sync_dist": True,
        }
        self.log(f"{stage}/loss", loss, prog_bar=True, **options)
        if stage == "train":
            for name, value in terms.items():
                self.log(f"train/loss_{name}", value, **options)

    @torch.no_grad()
    def _log_train_accuracy(self, output: HeadOutput, batch: Batch) -> None:
        """``train/seed_accuracy`` of the step's output: an epoch mean kept on the device
        (the reference plotted it for training and validation)."""
        ab_pred = self.net.decode(output.detach(), batch["L"].shape[-2:])
        self.log(
            "train/seed_accuracy",
            seed_accuracy(ab_pred, batch["ab"]),
            on_step=False,
            on_epoch=True,
            batch_size=len(ab_pred),
            sync_dist=True,
        )

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        if not self.automatic_optimization:
            return self.adversarial_step(batch)
        loss, terms, output = self.model_step(batch)
        self._log_loss("train", loss, terms, len(batch["L"]))
        self._log_train_accuracy(output, batch)
        return loss

    def adversarial_step(self, batch: Batch) -> Tensor:
        """A training step with a critic (manual optimization): the colorizer's step on its
        loss, the adversarial term included from ``adversarial_start_epoch``, then from then
        on the critic's step on the true ab and the (detached) prediction."""
        adversarial = self.loss_fn.adversarial
        optimizers = self.optimizers()
        assert adversarial is not None and isinstance(optimizers, list)  # manual optimization
        generator, critic = optimizers
        active = self.current_epoch >= adversarial.start_epoch
        self.toggle_optimizer(generator)
        self.loss_fn.adversarial_active = active  # the term counts in training steps only
        try:
            loss, terms, output = self.model_step(batch)
        finally:
            self.loss_fn.adversarial_active = False
        generator.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        generator.step()
        self.untoggle_optimizer(generator)
        if active:
            self.toggle_optimizer(critic)
            ab_pred = self.loss_fn.decode(output.detach(), batch)
            critic_loss = adversarial.discriminator_loss(batch["L"], batch["ab"], ab_pred)
            critic.zero_grad(set_to_none=True)
            self.manual_backward(critic_loss)
            critic.step()
            self.untoggle_optimizer(critic)
            terms = {**terms, "discriminator": critic_loss.detach()}
        self._log_loss("train", loss.detach(), terms, len(batch["L"]))
        self._log_train_accuracy(output, batch)
        return loss.detach()

    def on_train_epoch_end(self) -> None:
        scheduled = self.lr_schedulers()
        if self.automatic_optimization or not scheduled:
            return  # Lightning steps the schedulers of automatic optimization itself
        for scheduler in scheduled if isinstance(scheduled, list) else [scheduled]:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                monitor = self.trainer.callback_metrics.get(
                    self.hparams["scheduler"].get("monitor")
                )
                if monitor is not None:
                    scheduler.step(monitor)
            else:
                scheduler.step()

    def evaluation_step(
        self, batch: Batch, stage: str, metrics: ColorizationMetrics
    ) -> dict[str, Tensor]:
        """A validation or test step: the loss, metrics on the decoded ab, and the pictures."""
        loss, terms, output = self.model_step(batch)
        ab_pred = self.net.decode(output, batch["L"].shape[-2:])
        rgb_pred = to_rgb(batch["L"], ab_pred)
        metrics.update(ab_pred, batch["ab"], rgb_pred, batch["rgb"])
        self._log_loss(stage, loss, terms, len(ab_pred))
        return {"loss": loss, "ab_pred": ab_pred.detach(), "rgb_pred": rgb_pred.detach()}

    def validation_step(self, batch: Batch, batch_idx: int) -> dict[str, Tensor]:
        return self.evaluation_step(batch, "val", self.val_metrics)

    def test_step(self, batch: Batch, batch_idx: int) -> dict[str, Tensor]:
        return self.evaluation_step(batch, "test", self.test_metrics)

    def predict_step(self, batch: Batch, batch_idx: int) -> Tensor:
        """ab_pred (B×2×H×W in (-1, 1)) for a batch of the predict loader."""
        return self(batch["L"])

    def _log_metrics(self, stage: str, metrics: ColorizationMetrics) -> None:
        # torchmetrics reduce their states over every rank, so each rank computes the same
        # values; sync_dist (averaging equal numbers) tells Lightning they are reduced.
        values = metrics.compute()
        metrics.reset()
        self.log(f"{stage}/psnr", values.pop("psnr"), prog_bar=True, sync_dist=True)
        self.log_dict({f"{stage}/{name}": value for name, value in values.items()}, sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val", self.val_metrics)

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test", self.test_metrics)

    # -- set-up --------------------------------------------------------------------------
    def configure_callbacks(self) -> list[L.Callback]:
        """The stop on a non-finite loss, the colour prior for a loss that needs one, the thaw
        of a backbone that has one."""
        callbacks: list[L.Callback] = [StopOnNonFiniteLoss()]
        if self.loss_fn.needs_prior:
            callbacks.append(ColourPrior())
        if any(b.unfreeze_at is not None for b in self.net.backbones()):
            callbacks.append(BackboneThaw())
        return callbacks

    def on_fit_start(self) -> None:
        self.configure_network()

    def configure_network(self) -> None:
        """channels_last and `torch.compile` as configured, on the module's current device."""
        wanted = self.hparams["channels_last"]
        if wanted is True or (wanted == "auto" and self.device.type == "cuda"):
            self.net.to(memory_format=torch.channels_last)
        if self.hparams.get("compile"):
            mode = self.hparams["compile"]
            self.net.compile(mode=None if mode in (True, "default") else mode)

    def fit_prior(self, ab_batches, sum_over_ranks=None) -> Tensor:
        """The loss's colour prior from the training split's ab batches (B×2×H×W, on this
        module's device), and the head's logits started from it; returns the prior (Q)."""
        prior = self.loss_fn.fit_prior(ab_batches, sum_over_ranks=sum_over_ranks)
        self.net.head.start_from_prior(prior)
        return prior

    def on_train_epoch_start(self) -> None:
        optimizers = self.optimizers()
        colorizer = optimizers[0] if isinstance(optimizers, list) else optimizers
        self.log("train/lr", colorizer.param_groups[0]["lr"], on_step=False, on_epoch=True)

    def parameter_groups(self, lr: float, backbone_lr_scale: float) -> list[dict[str, Any]]:
        """The optimizer's groups: the trained parts at ``lr``; backbones that train now or
        will be unfrozen (``model.freeze_backbone``) at ``lr × backbone_lr_scale`` (their
        gradients stay None until then, so the optimizer skips them). Backbones frozen for
        good are left out."""
        backbone_params = [
            p
            for b in self.net.backbones()
            if b.trainable or b.unfreeze_at is not None
            for p in b.parameters()
        ]
        in_backbones = {id(p) for b in self.net.backbones() for p in b.parameters()}
        rest = [p for p in self.net.parameters() if p.requires_grad and id(p) not in in_backbones]
        groups = [{"params": rest, "lr": lr}]
        if backbone_params:
            groups.append({"params": backbone_params, "lr": lr * backbone_lr_scale})
        return groups

    def configure_optimizers(self) -> Any:
        config = dict(self.hparams["optimizer"])
        backbone_lr_scale = float(config.pop("backbone_lr_scale", 0.1))
        make_optimizer = build(config, "optimizer")
        groups = self.parameter_groups(float(config["lr"]), backbone_lr_scale)
        params = [p for group in groups for p in group["params"]]
        optimizer = make_optimizer(params=groups, **_fused_on_cuda(make_optimizer, params))
        schedulers = []
        if self.hparams["scheduler"]:
            config = dict(self.hparams["scheduler"])
            lightning_keys = {
                k: config.pop(k) for k in ("monitor", "interval", "frequency") if k in config
            }
            scheduler = build(config, "scheduler")(optimizer=optimizer)
            schedulers.append({"scheduler": scheduler, **lightning_keys})
        if self.loss_fn.adversarial is not None:
            critic = torch.optim.Adam(
                self.loss_fn.adversarial.parameters(),
                lr=self.loss_fn.adversarial.lr,
                betas=(0.5, 0.999),
            )
            return [optimizer, critic], schedulers
        if not schedulers:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": schedulers[0]}

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(
        cls, path: str | Path, map_location: str | torch.device = "cpu", trusted: bool = False
    ) -> ColorizationModule:
        """Rebuild a trained module from a checkpoint file alone (earlier colorlab versions'
        too), read safely (`colorlab.loading`; ``trusted`` unpickles in full). A frozen
        pretrained backbone is restored from the checkpoint, never downloaded again. Raises
        `ColorlabError` for a missing, corrupt, unsafe or foreign file."""
        hparams, state_dict = read_checkpoint(path, map_location, trusted)
        module = cls(**{**hparams, "model": model_without_download(hparams["model"])})
        load_weights(module, state_dict, path)
        return module.eval()


def _fused_on_cuda(make_optimizer: Any, params: list[Tensor]) -> dict[str, bool]:
    """``{"fused": True}`` where the optimizer has a fused CUDA implementation (Adam, AdamW,
    SGD) and the parameters are on a GPU, unless the config already says; else nothing."""
    func = getattr(make_optimizer, "func", make_optimizer)
    if "fused" in getattr(make_optimizer, "keywords", {}) or not params:
        return {}
    takes_fused = "fused" in inspect.signature(func).parameters
    return {"fused": True} if takes_fused and all(p.is_cuda for p in params) else {}
