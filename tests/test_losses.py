"""Colour bins, soft encoding, decoding, rebalancing and the losses built on them."""

import pytest
import torch

from colorlab.color import (
    AB_BIN_SIZE,
    AB_SCALE,
    ab_gamut,
    ab_grid_index,
    annealed_mean,
    lab_batch,
    soft_encoding_table,
)
from colorlab.configs import plain
from colorlab.errors import ColorlabError
from colorlab.losses import (
    ClassificationLoss,
    ColorizationLoss,
    RegressionLoss,
    colorfulness_shortfall,
    rebalancing_weights,
    smooth_prior,
)
from colorlab.models import baseline
from colorlab.models.heads import ClassificationHead, RegressionHead
from colorlab.training.module import ColorizationModule
from conftest import compose_train


def _random_batch(n=4, size=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return lab_batch(
        torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=generator)
    )


def test_gamut_is_the_in_gamut_cells_of_a_10_unit_grid():
    bins = ab_gamut()
    assert bins.shape == (261, 2)
    assert torch.equal(bins, ab_gamut())  # deterministic
    assert torch.all(bins % AB_BIN_SIZE == 0)
    assert len({tuple(b) for b in bins.tolist()}) == len(bins)
    # every colour of 50,000 random 8-bit ones falls in one of the bins' cells
    ab = _random_batch(50, 32, seed=1)["ab"] * AB_SCALE
    cells = {
        tuple(c)
        for c in (torch.round(ab / AB_BIN_SIZE) * AB_BIN_SIZE)
        .permute(0, 2, 3, 1)
        .reshape(-1, 2)
        .tolist()
    }
    assert cells <= {tuple(b) for b in bins.tolist()}
    assert len(cells) > 150  # and random colours reach most of them


def test_soft_encoding_sits_on_the_nearest_bins_and_sums_to_one():
    bins = ab_gamut()
    indices, weights = soft_encoding_table(bins, neighbours=5, sigma=5.0)
    assert indices.shape == weights.shape == (256 * 256, 5)
    assert torch.allclose(weights.sum(1), torch.ones(len(weights)))
    assert torch.all(weights[:, :-1] >= weights[:, 1:])  # nearest first, heaviest first
    # against a brute-force search at random ab pixels
    ab = torch.rand(1, 2, 20, 20, generator=torch.Generator().manual_seed(3)) * 1.6 - 0.8
    rows = ab_grid_index(ab).flatten()
    point = torch.round(ab * AB_SCALE).permute(0, 2, 3, 1).reshape(-1, 2)
    nearest = torch.cdist(point, bins).topk(5, largest=False).values
    chosen = torch.linalg.vector_norm(bins[indices[rows]] - point[:, None], dim=-1)
    assert torch.allclose(chosen, nearest)
    # a pixel right on a bin centre puts most weight on that bin
    centre = bins[100] / AB_SCALE
    row = ab_grid_index(centre.view(1, 2, 1, 1)).item()
    assert indices[row, 0] == 100 and weights[row, 0] > 0.4


def test_one_hot_logits_at_small_temperature_decode_to_the_bin_centre():
    bins = ab_gamut()
    logits = torch.zeros(3, len(bins), 2, 2)
    for i, q in enumerate((0, 120, 260)):
        logits[i, q] = 1.0
    ab = annealed_mean(logits, bins, temperature=0.01)
    for i, q in enumerate((0, 120, 260)):
        assert torch.allclose(ab[i], (bins[q] / AB_SCALE).view(2, 1, 1).expand(2, 2, 2), atol=1e-4)
    # T = 1 on uniform logits is the mean of all bins
    mean = annealed_mean(torch.zeros(1, len(bins), 1, 1), bins, 1.0)
    assert torch.allclose(mean.flatten(), bins.mean(0) / AB_SCALE, atol=1e-5)


def test_rebalancing_weights_have_expectation_one_under_the_prior():
    counts = torch.rand(261, generator=torch.Generator().manual_seed(4)) ** 4 * 1000
    prior = smooth_prior(counts, ab_gamut(), sigma=5.0)
    assert prior.sum().item() == pytest.approx(1.0, abs=1e-5) and prior.min() > 0
    for mix in (0.0, 0.5, 0.9):
        weights = rebalancing_weights(prior, mix)
        assert (prior * weights).sum().item() == pytest.approx(1.0, abs=1e-5)
        assert weights[prior.argmin()] > weights[prior.argmax()]  # rare colours count more
    assert torch.allclose(rebalancing_weights(prior, 1.0), torch.ones(261))  # λ = 1: off


def test_classification_loss_prefers_the_true_colours_and_needs_its_prior():
    batch = _random_batch()
    loss = ClassificationLoss(downsample=4)
    with pytest.raises(RuntimeError, match="fit_prior"):
        loss(torch.zeros(4, 261, 8, 8), batch)
    prior = loss.fit_prior([batch["ab"][:2], batch["ab"][2:]])
    assert not loss.needs_prior and prior.sum().item() == pytest.approx(1.0, abs=1e-5)
    indices, weights = loss.encode(batch["ab"], (8, 8))
    right = torch.full((4, 261, 8, 8), -20.0).scatter(1, indices, weights.log() + 20)
    uniform = torch.zeros(4, 261, 8, 8)
    assert loss(right, batch) < 0.5 * loss(uniform, batch)
    # rebalancing off: no prior needed, plain soft cross-entropy (log Q for uniform logits)
    plain_loss = ClassificationLoss(rebalance=None)
    assert plain_loss(uniform, batch).item() == pytest.approx(
        torch.log(torch.tensor(261.0)).item(), rel=1e-4
    )


def test_classification_loss_alone_switches_the_head(tmp_path):
    cfg = compose_train("loss=classification", run_dir=tmp_path)
    module = ColorizationModule(
        model=plain(cfg.model), loss=plain(cfg.loss), optimizer=plain(cfg.optimizer)
    )
    assert isinstance(module.net.head, ClassificationHead) and module.net.head.temperature == 0.38
    L = torch.rand(2, 1, 64, 64) * 100
    assert module.net(L).shape == (2, 261, 16, 16)  # logits at 1/4
    ab = module(L)  # decoded, then upsampled to the input's size
    assert ab.shape == (2, 2, 64, 64) and ab.abs().max() < 1
    mse = compose_train(run_dir=tmp_path)
    regression = ColorizationModule(
        model=plain(mse.model), loss=plain(mse.loss), optimizer=plain(mse.optimizer)
    )
    assert isinstance(regression.net.head, RegressionHead)


def test_predict_ab_decodes_with_the_temperature_asked_for():
    net = baseline(head={"kind": "classification", "temperature": 0.38}).eval()
    vivid = int(ab_gamut().norm(dim=1).argmax())
    torch.nn.init.zeros_(net.head.conv.weight)
    with torch.no_grad():
        net.head.conv.bias.zero_()[vivid] = 3.0  # every pixel: that bin is the most likely
    L = torch.rand(1, 1, 32, 32) * 100
    with torch.no_grad():
        cold, default, mean = (net.predict_ab(L, temperature=t) for t in (0.05, None, 1.0))
    centre = ab_gamut()[vivid] / AB_SCALE
    assert torch.allclose(cold, centre.view(1, 2, 1, 1).expand_as(cold), atol=1e-3)
    chroma = [ab.norm(dim=1).mean() for ab in (cold, default, mean)]
    assert chroma[0] > chroma[1] > chroma[2]  # lower T: more vivid


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"rebalance": 2}, "loss.rebalance"),
        ({"temperature": 0}, "loss.temperature"),
        ({"downsample": 3}, "loss.downsample"),
        ({"neighbours": 0}, "loss.neighbours"),
    ],
)
def test_bad_classification_options_name_the_key(options, key):
    with pytest.raises(ColorlabError, match=key.replace(".", r"\.")):
        ColorizationModule(
            model={"_target_": "colorlab.models.baseline"},
            loss={"_target_": "colorlab.losses.ClassificationLoss", **options},
            optimizer={"_target_": "torch.optim.Adam", "_partial_": True},
        )


def test_colorfulness_term_penalises_only_dull_predictions():
    batch = _random_batch(seed=5)
    assert colorfulness_shortfall(batch["ab"], batch).item() == pytest.approx(0.0, abs=1e-3)
    gray = torch.zeros_like(batch["ab"], requires_grad=True)
    shortfall = colorfulness_shortfall(gray, batch)
    assert shortfall.item() > 0.2
    shortfall.backward()
    assert torch.isfinite(gray.grad).all() and gray.grad.abs().sum() > 0
    plain_mse = RegressionLoss("mse")
    with_term = RegressionLoss("mse", colorfulness_weight=1.0)
    assert with_term(gray, batch).item() == pytest.approx(
        (plain_mse(gray, batch) + shortfall).item()
    )
    with pytest.raises(ColorlabError, match="^colorfulness_weight=-1 is not allowed"):
        RegressionLoss("mse", colorfulness_weight=-1)
    with pytest.raises(ColorlabError, match="^kind='l3' is not allowed"):
        RegressionLoss("l3")


class _ChromaLoss(ColorizationLoss):
    """A user's loss as the README's "Adding a loss" describes it: its own terms only."""

    def own_terms(self, output, batch):
        return {"chroma": (output.norm(dim=1) - batch["ab"].norm(dim=1)).abs().mean()}


class _NamedChromaLoss(_ChromaLoss):
    def own_term_names(self):
        return ("chroma",)


def test_a_user_loss_trains_with_the_added_terms_and_its_names_are_optional():
    batch = _random_batch()
    output = torch.zeros_like(batch["ab"], requires_grad=True)
    loss = _ChromaLoss(l1_weight=0.5)
    terms = loss.terms(output, batch)
    assert set(terms) == {"chroma", "l1"}
    loss(output, batch).backward()
    assert output.grad.abs().sum() > 0
    # without own_term_names only the added terms can be named by a monitor
    assert loss.term_names() == ["l1"]
    assert _NamedChromaLoss(l1_weight=0.5).term_names() == ["chroma", "l1"]
