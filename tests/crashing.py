"""A callback that crashes a training run, for tests of how a failed run is recorded
(``+callbacks.crash._target_=crashing.CrashAtEpoch``, with tests/ on PYTHONPATH)."""

import lightning as L


class CrashAtEpoch(L.Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError(f"simulated crash in epoch {self.epoch}")
