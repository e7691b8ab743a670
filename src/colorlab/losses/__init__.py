"""Losses: ``loss(output, batch)`` -> scalar, where ``output`` is the network's raw head output.

A loss is a sum of weighted terms: its own (`regression`: mse / l1 / huber, `classification`)
plus any of the terms every loss can add on the decoded ab (`base`: l1, colourfulness,
`perceptual`, `adversarial`). It also says which head it trains (`ColorizationLoss.head`),
so choosing a loss in the config (``loss=classification``) gives the network the matching
head. To add a loss: subclass `ColorizationLoss`, implement ``own_terms(output, batch)`` (and
``own_term_names`` so that a ``monitor`` may name its terms, ``decode`` and `head_for` if it
trains another head), and add a ``conf/loss/NAME.yaml`` naming the class with ``_target_``.
Checkpoints name these classes as ``colorlab.losses.NAME``: they stay importable from here.
"""

from colorlab.losses.base import Batch, ColorizationLoss, colorfulness_shortfall, loss_name
from colorlab.losses.classification import ClassificationLoss, rebalancing_weights, smooth_prior
from colorlab.losses.regression import REGRESSION_KINDS, RegressionLoss

__all__ = [
    "REGRESSION_KINDS",
    "Batch",
    "ClassificationLoss",
    "ColorizationLoss",
    "RegressionLoss",
    "colorfulness_shortfall",
    "loss_name",
    "rebalancing_weights",
    "smooth_prior",
]
