"""colorlab's submitit launchers for Hydra (which loads launchers from the ``hydra_plugins``
package only): the plugin's, with a sweep's failed jobs summarised in one line each
(`colorlab.cli.launchers`). Without hydra-submitit-launcher, choosing one is a one-line error
that says how to install it."""

from typing import Any

try:
    from hydra_plugins.hydra_submitit_launcher import submitit_launcher
except ImportError:  # the sweep extra is not installed
    submitit_launcher = None

if submitit_launcher is not None:
    from colorlab.cli.launchers import SummarisedFailures

    class LocalLauncher(SummarisedFailures, submitit_launcher.LocalLauncher):
        """``hydra/launcher=submitit_local``: each job a local process."""

    class SlurmLauncher(SummarisedFailures, submitit_launcher.SlurmLauncher):
        """``hydra/launcher=slurm``: each job a SLURM job."""

else:
    from hydra.plugins.launcher import Launcher

    from colorlab.errors import ColorlabError

    class _NotInstalled(Launcher):
        choice = ""

        def __init__(self, **config: Any) -> None:
            raise ColorlabError(
                f"hydra/launcher={self.choice} needs a Hydra plugin that is not installed; "
                "pip install 'colorlab[sweep]'"
            )

        def setup(self, **kwargs: Any) -> None:  # pragma: no cover - never constructed
            raise NotImplementedError

        def launch(self, job_overrides: Any, initial_job_idx: int) -> Any:  # pragma: no cover
            raise NotImplementedError

    class LocalLauncher(_NotInstalled):
        choice = "submitit_local"

    class SlurmLauncher(_NotInstalled):
        choice = "slurm"
