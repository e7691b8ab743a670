"""The LightningModule: training / validation / test steps, loss, metrics, optimizer."""

from __future__ import annotations

import copy
import inspect
import logging
import re
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from rich.progress import track
from torch import Tensor

from colorlab.checkpointing import read_checkpoint
from colorlab.color import to_rgb
from colorlab.errors import ColorlabError
from colorlab.losses import ColorizationLoss
from colorlab.metrics import ColorizationMetrics

log = logging.getLogger(__name__)

#: ``compile=``: true (= default) or a `torch.compile` mode.
COMPILE_MODES = (True, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class ColorizationModule(L.LightningModule):
    """Trains a `colorlab.models.Colorizer` on batches from a `ColorizationDataModule`.

    Everything needed to rebuild the network is stored in the checkpoint's hyperparameters
    (Hydra configs as plain dicts), so ``ColorizationModule.from_checkpoint(path)`` suffices.

    Args:
        model: config of the network (``_target_`` a builder in `colorlab.models`); its
            head is the one the loss asks for (`colorlab.losses.ColorizationLoss.head`).
        loss: config of a `colorlab.losses.ColorizationLoss`, e.g.
            ``{"_target_": "colorlab.losses.RegressionLoss", "kind": "mse"}``.
        optimizer: partial config of the optimizer (``_partial_: true``).
        scheduler: partial config of an LR scheduler, or None. A dict with ``scheduler``
            and Lightning keys (``monitor``, ``interval``) is also accepted.
        image_size: the square size the data set feeds (kept for inference).
        channels_last: ``"auto"`` (on CUDA), true or false.
        compile: `torch.compile` the network for fitting (a `COMPILE_MODES` mode name, or
            false); checkpoints are the same either way.
    """

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
            raise ColorlabError(
                f"compile={compile!r} is not allowed; use false, true or one of "
                + ", ".join(COMPILE_MODES[1:])
            )
        self.save_hyperparameters()
        self.loss_fn = _instantiate(loss)
        if not isinstance(self.loss_fn, ColorizationLoss):
            raise ColorlabError(
                f"loss._target_={loss.get('_target_')} is not a colorlab.losses.ColorizationLoss; "
                "see conf/loss/ for the losses"
            )
        self.net = _instantiate(model, head=self.loss_fn.head)
        self.image_size = image_size or self.net.native_size
        self.val_metrics = ColorizationMetrics()
        self.test_metrics = ColorizationMetrics(ssim=True, auc=True)

    def forward(self, L: Tensor) -> Tensor:
        """L (B×1×H×W, 0..100) -> ab_pred (B×2×H×W in (-1, 1)), through `Colorizer.predict_ab`."""
        return self.net.predict_ab(L)

    # -- steps ---------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.loss_fn(self.net(batch["L"]), batch)
        self.log(
            "train/loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(batch["L"]),
            sync_dist=True,  # the mean over every rank's images (one reduction per epoch)
        )
        return loss

    def _evaluate(
        self, batch: dict[str, Tensor], stage: str, metrics: ColorizationMetrics
    ) -> dict[str, Tensor]:
        output = self.net(batch["L"])
        loss = self.loss_fn(output, batch)
        ab_pred = self.net.decode(output, batch["L"].shape[-2:])
        rgb_pred = to_rgb(batch["L"], ab_pred)
        metrics.update(ab_pred, batch["ab"], rgb_pred, batch["rgb"])
        self.log(
            f"{stage}/loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(ab_pred),
            sync_dist=True,
        )
        return {"loss": loss, "ab_pred": ab_pred.detach(), "rgb_pred": rgb_pred.detach()}

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        return self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        return self._evaluate(batch, "test", self.test_metrics)

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
    def on_fit_start(self) -> None:
        if self.trainer.world_size > 1 and any(
            b.unfreeze_at is not None and not b.trainable for b in self.net.backbones()
        ):
            # DDP synchronises the gradients of the parameters that train when it wraps the
            # network: a backbone thawed later would train apart on every rank.
            raise ColorlabError(
                "model.freeze_backbone=N (thaw during training) cannot be used with DDP; "
                "use model.freeze_backbone=true or false"
            )
        self.configure_network()
        if getattr(self.loss_fn, "needs_prior", False):  # not when resumed: it is restored
            self.fit_colour_prior()

    def configure_network(self) -> None:
        """channels_last and `torch.compile` as configured, on the module's current device."""
        wanted = self.hparams.channels_last
        if wanted is True or (wanted == "auto" and self.device.type == "cuda"):
            self.net.to(memory_format=torch.channels_last)
        if self.hparams.get("compile"):
            mode = self.hparams.compile
            self.net.compile(mode=None if mode in (True, "default") else mode)

    def fit_colour_prior(self) -> None:
        """One pass over the training split (each rank over its shard, the counts summed over
        ranks): the colour prior of a classification loss, its rebalancing weights, and the
        starting point of the head's logits."""
        datamodule = self.trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "split_dataloader"):
            raise ColorlabError("loss=classification needs a colorlab data module for its prior")
        loader = datamodule.split_dataloader("train")
        seen = 0

        def batches():
            nonlocal seen
            for raw in track(loader, description="colour prior", transient=True):
                seen += len(raw)
                yield datamodule.prepare_batch(raw.to(self.device))["ab"]

        strategy = self.trainer.strategy
        prior = self.loss_fn.fit_prior(
            batches(), sum_over_ranks=lambda t: strategy.reduce(t, reduce_op="sum")
        )
        if hasattr(self.net.head, "start_from_prior"):
            self.net.head.start_from_prior(prior)
        seen = int(strategy.reduce(torch.tensor(seen, device=self.device), reduce_op="sum"))
        log.info(
            "colour prior over %d bins from %d training images (most common bin: %.1f%%)",
            len(prior),
            seen,
            100 * float(prior.max()),
        )

    def on_train_epoch_start(self) -> None:
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], on_step=False, on_epoch=True)
        for backbone in self.net.backbones():
            thaw_at = backbone.unfreeze_at
            if thaw_at is not None and self.current_epoch >= thaw_at and not backbone.trainable:
                backbone.set_trainable(True)
                backbone.train(self.training)
                log.info("epoch %d: fine-tuning the %s backbone", self.current_epoch, backbone.name)

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
        config = dict(self.hparams.optimizer)
        backbone_lr_scale = float(config.pop("backbone_lr_scale", 0.1))
        make_optimizer = instantiate(config)
        groups = self.parameter_groups(float(config["lr"]), backbone_lr_scale)
        params = [p for group in groups for p in group["params"]]
        optimizer = make_optimizer(params=groups, **_fused_on_cuda(make_optimizer, params))
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
        checkpoint = read_checkpoint(path, map_location)
        hparams = checkpoint["hyper_parameters"]
        hparams, state_dict = upgrade_checkpoint(dict(hparams), checkpoint["state_dict"])
        model = copy.deepcopy(dict(hparams["model"]))
        if "pretrained" in model:
            model["pretrained"] = False  # the frozen weights are in the state dict
        module = cls(**{**hparams, "model": model})
        try:
            module.load_state_dict(state_dict)
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise ColorlabError(f"{path} does not match its model config ({first})") from error
        return module.eval()


def _fused_on_cuda(make_optimizer: Any, params: list[Tensor]) -> dict[str, bool]:
    """``{"fused": True}`` where the optimizer has a fused CUDA implementation (Adam, AdamW,
    SGD) and the parameters are on a GPU, unless the config already says; else nothing."""
    func = getattr(make_optimizer, "func", make_optimizer)
    if "fused" in getattr(make_optimizer, "keywords", {}) or not params:
        return {}
    takes_fused = "fused" in inspect.signature(func).parameters
    return {"fused": True} if takes_fused and all(p.is_cuda for p in params) else {}


def _instantiate(config: dict[str, Any], **kwargs: Any) -> Any:
    """`hydra.utils.instantiate`, letting a `ColorlabError` of the target through as itself."""
    try:
        return instantiate(config, **kwargs, _convert_="all")
    except InstantiationException as error:
        if isinstance(error.__cause__, ColorlabError):
            raise error.__cause__ from None
        raise


#: Losses of checkpoints written before `colorlab.losses` (torch losses on ab).
_LEGACY_LOSSES = {"torch.nn.MSELoss": "mse", "torch.nn.L1Loss": "l1", "torch.nn.HuberLoss": "huber"}
_LEGACY_HEAD = re.compile(r"^net\.decoder\.(\d+)\.(weight|bias)$")


#: Models of checkpoints written before `colorlab.models.backbone`: VGG-16 wired in by hand,
#: fed L/100; now configurations of the generic builders with ``gray="lightness"``.
_LEGACY_MODELS = {
    "colorlab.models.vgg16": ("colorlab.models.backbone_encoder", "encoder"),
    "colorlab.models.vgg16_fusion": ("colorlab.models.global_fusion", "feature_extractor"),
}


def upgrade_checkpoint(
    hparams: dict[str, Any], state_dict: dict[str, Tensor]
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Read checkpoints of earlier colorlab versions (stated conversions, same outputs):

    - before output heads, the decoder's last conv (a bare Conv2d, where the other decoder
      convs are conv+ReLU blocks) becomes the regression head's conv, and a torch loss on ab
      becomes the equivalent `colorlab.losses.RegressionLoss`;
    - before generic backbones, ``colorlab.models.vgg16`` / ``vgg16_fusion`` become
      ``backbone_encoder`` / ``global_fusion`` with ``backbone: vgg16, gray: lightness``
      (the L/100 input they were trained on), their ``<part>.features.*`` weights
      ``<part>.body.features.*``.
    """
    model = dict(hparams.get("model") or {})
    if model.get("_target_") in _LEGACY_MODELS:
        target, part = _LEGACY_MODELS[model.pop("_target_")]
        hparams["model"] = {"_target_": target, "backbone": "vgg16", "gray": "lightness", **model}
        old, new = f"net.{part}.features.", f"net.{part}.body.features."
        state_dict = {
            (new + key[len(old) :] if key.startswith(old) else key): value
            for key, value in state_dict.items()
        }
    loss = dict(hparams.get("loss") or {})
    if loss.get("_target_") in _LEGACY_LOSSES:
        kind = _LEGACY_LOSSES[loss.pop("_target_")]
        delta = {"delta": loss["delta"]} if "delta" in loss else {}
        hparams["loss"] = {"_target_": "colorlab.losses.RegressionLoss", "kind": kind, **delta}
    if not any(key.startswith("net.head.") for key in state_dict):
        state_dict = {
            (
                f"net.head.conv.{match.group(2)}" if (match := _LEGACY_HEAD.match(key)) else key
            ): value
            for key, value in state_dict.items()
        }
    return hparams, state_dict
