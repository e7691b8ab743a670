"""Writing checkpoints so that none is ever lost: atomic writes from a background thread,
``last.ckpt`` = the last epoch, a resumable checkpoint when a run is interrupted (SIGTERM,
Ctrl-C), and the check that a checkpoint can resume a run. Reading them (and the upgrades of
earlier versions' checkpoints) is `colorlab.loading`."""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning_utilities.core.apply_func import apply_to_collection

from colorlab.errors import ColorlabError
from colorlab.files import write_failure, written_atomically
from colorlab.loading import SAFETENSORS, load_checkpoint, read_checkpoint


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """`torch.save` to a temporary file beside ``path``, fsync, then rename over ``path``.

    A crash or a full disk leaves either the previous file or the new one, never a partial
    one. Raises `ColorlabError` naming the path for OS errors (no space, no permission).
    """
    path = Path(path)
    try:
        with written_atomically(path) as temporary, open(temporary, "wb") as file:
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(OSError):  # make the rename durable where the OS allows
            directory = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
    except (OSError, RuntimeError) as error:
        # torch's zip writer reports a failed write (a full disk) as a RuntimeError
        # ("unexpected pos …"); the OS reports it as an OSError.
        raise ColorlabError(
            f"cannot write checkpoint {path}: {write_failure(error, path.parent)}; free space "
            "or choose another run dir (hydra.run.dir=…)"
        ) from error


def check_resumable(path: str | Path, hparams: dict[str, Any], trusted: bool = False) -> None:
    """Raise a `ColorlabError` unless the checkpoint at ``path`` can resume a run configured
    with ``hparams`` (the module's): the same model, loss and optimizer, and the same
    adversarial critic (on or off, its mode), whose weights and optimizer the checkpoint
    holds or lacks."""
    if Path(path).suffix.lower() == SAFETENSORS:
        raise ColorlabError(
            f"ckpt_path={path} holds weights only (safetensors), not a run's state; resume from "
            "the run's .ckpt file"
        )
    saved = read_checkpoint(path, trusted=trusted)[0]
    for group in ("model", "loss", "optimizer"):
        then = _target(saved.get(group))
        now = _target(hparams.get(group))
        if then != now:
            raise ColorlabError(
                f"ckpt_path={path} was trained with {group} {then}, this run has {now}; resume "
                f"with the same {group} (see {Path(path).parent.parent / 'config.yaml'}) or start "
                "a new run without ckpt_path"
            )
    then, now = _critic(saved.get("loss")), _critic(hparams.get("loss"))
    if then != now:
        raise ColorlabError(
            f"ckpt_path={path} was trained {then}, this run is configured {now}; resume with the "
            f"same loss.adversarial_weight (on or off) and loss.adversarial_mode (see "
            f"{Path(path).parent.parent / 'config.yaml'}) or start a new run without ckpt_path"
        )


def _target(config: Any) -> str:
    """What a config builds: its ``_target_`` (and a regression loss's kind)."""
    config = dict(config or {})
    kind = f" ({config['kind']})" if "kind" in config else ""
    return f"{config.get('_target_', 'nothing')}{kind}"


def _critic(loss: Any) -> str:
    """Whether a loss config trains an adversarial critic, and in which mode, in words."""
    loss = dict(loss or {})
    if not loss.get("adversarial_weight"):
        return "without an adversarial critic (loss.adversarial_weight=0)"
    return f"with an adversarial critic (loss.adversarial_mode={loss.get('adversarial_mode', 'hinge')})"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, writing through `atomic_torch_save`, and its reader (a
    resume, the test of the best checkpoint) reading through `colorlab.loading`'s safe reader
    (``trusted``: in full).

    The tensors are copied to host memory at once and the file is written by one background
    thread, so that training goes on meanwhile. Removing
    a checkpoint (the previous best) and the end of fitting wait for pending writes first,
    and a write error is raised at the next save, removal or teardown.
    """

    def __init__(self, trusted: bool = False) -> None:
        super().__init__()
        self.trusted = trusted
        self._writer: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []

    def load_checkpoint(
        self, path: str | Path, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        # weights_only is Lightning's guess; colorlab's reader decides (weights only, unless
        # the user trusts the file)
        self.wait()  # a checkpoint this run is still writing (the best, tested after fit)
        return load_checkpoint(path, map_location or "cpu", self.trusted)

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        self._raise_failures(wait=False)
        snapshot = apply_to_collection(checkpoint, torch.Tensor, _host_copy)
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoints")
        self._pending.append(self._writer.submit(atomic_torch_save, snapshot, path))

    def remove_checkpoint(self, path: str | Path) -> None:
        self.wait()
        super().remove_checkpoint(path)

    def wait(self) -> None:
        """Block until every checkpoint handed over so far is on disk (or raise its error)."""
        self._raise_failures(wait=True)

    def teardown(self) -> None:
        try:
            self.wait()
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)
                self._writer = None

    def _raise_failures(self, wait: bool) -> None:
        done = [f for f in self._pending if wait or f.done()]
        self._pending = [f for f in self._pending if f not in done]
        for future in done:
            future.result()


def _host_copy(tensor: torch.Tensor) -> torch.Tensor:
    """A point-in-time copy in host memory (the optimizer goes on changing the original)."""
    return tensor.detach().to("cpu", copy=True)


class Checkpoints(ModelCheckpoint):
    """`ModelCheckpoint` whose ``last.ckpt`` always holds the last finished epoch (Lightning
    rewrites it only when a top-k checkpoint was saved), and which saves ``last.ckpt`` when
    the run is interrupted by SIGTERM or Ctrl-C, so that ``ckpt_path=…/last.ckpt`` resumes."""

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_missed(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_missed(trainer)

    def _save_last_if_missed(self, trainer: L.Trainer) -> None:
        # Skipped where this step was already saved (then last.ckpt was written with it).
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, (SIGTERMException, KeyboardInterrupt)) and self.save_last:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
            return
        super().on_exception(trainer, pl_module, exception)
