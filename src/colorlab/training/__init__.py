"""Training: the LightningModule (`module`), the callbacks (`callbacks`), writing and reading
checkpoints (`checkpoints`, `backward_compat`), experiment loggers (`loggers`), which rank
writes (`distributed`) and Optuna searches (`search`).

Import from the modules themselves (``from colorlab.training.module import
ColorizationModule``): this package imports nothing, so that inference, which reads
checkpoints through `backward_compat`, does not load Lightning.
"""
