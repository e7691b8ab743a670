"""Training: the LightningModule (`module`), the callbacks (`callbacks`), writing and reading
checkpoints (`checkpoints`; reading them is `colorlab.loading`), experiment loggers (`loggers`), which rank
writes (`distributed`) and Optuna searches (`search`).

Import from the modules themselves (``from colorlab.training.module import
ColorizationModule``): this package imports nothing, so that importing one of its modules
loads only what that module needs.
"""
