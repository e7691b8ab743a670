"""How far do sparse colour points go without learning? Each point's true colour spread over
the photo by a fixed rule (no network), scored like a colorizer on the hint sweep of
``colorlab.evaluate … evaluate.hint_points`` (the same kind of points, the same metrics);
and trained checkpoints beside them, as they are and leaning to colorlab's rule.

    python experiments/hint_propagation_bound.py [--root ../shared/data/scenes] [--size 64] \\
        [--limit 0] [--points 1 5 10 50] [--only bilateral spread] [--blend CKPT …]

Rules: ``flat`` (every pixel the points' mean colour), ``nearest`` (the nearest point's),
and, leaning to gray (ab = 0) far from all points, ``gaussian σ`` (points weighted by
distance), ``bilateral σ ρ`` (by distance and by how alike the lightness is, per pixel) and
``spread σ ρ cells`` (`colorlab.models.hint_spread.HintSpread`: the bilateral rule on a
coarse grid, what ``model.hint_spread`` gives a network). σ in pixels at 64 px (scaled with
``--size``), ρ in L units. ``--blend``: each checkpoint as it predicts, and leaning to the
default spread by its confidence (for a checkpoint trained without it). Prints a JSON line
per rule and point count.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch import Tensor

from colorlab.configs import config_dir
from colorlab.inference import load_colorizer
from colorlab.inference.evaluation import HintSweep, evaluate_colorizers, paper_square
from colorlab.models.hint_spread import HintSpread

DEFAULT_SCENES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scenes"


class PixelRule:
    """Hint ab spread per pixel: weights w(pixel, hinted pixel) by ``kind`` (``flat``: 1,
    ``nearest``: 1 for the nearest, ``bilateral``: exp(−d²/2σ²) · exp(−ΔL²/2ρ²), ρ None for
    distance alone), normalized with a weight ``gray`` on ab = 0."""

    takes_hints = True

    def __init__(self, kind: str, sigma: float = 1.0, rho: float | None = None, gray=0.05):
        self.kind, self.sigma, self.rho, self.gray = kind, sigma, rho, gray

    def predict_ab(self, L: Tensor, *, hints: Tensor | None = None) -> Tensor:
        batch, _, height, width = L.shape
        out = torch.zeros(batch, 2, height, width)
        if hints is None:
            return out
        ys, xs = torch.meshgrid(
            torch.arange(height, dtype=torch.float32),
            torch.arange(width, dtype=torch.float32),
            indexing="ij",
        )
        for i in range(batch):
            where = hints[i, 2] > 0
            if not where.any():
                continue
            colours = hints[i, :2, where]  # 2×P
            d2 = (ys[None] - ys[where][:, None, None]) ** 2 + (
                xs[None] - xs[where][:, None, None]
            ) ** 2
            if self.kind == "flat":
                w = torch.ones_like(d2)
            elif self.kind == "nearest":
                w = torch.zeros_like(d2).scatter_(0, d2.argmin(0, keepdim=True), 1.0)
            else:
                log_w = -d2 / (2 * self.sigma**2)
                if self.rho is not None:
                    dl = L[i, 0][None] - L[i, 0, where][:, None, None]
                    log_w = log_w - dl**2 / (2 * self.rho**2)
                w = log_w.exp()
            out[i] = torch.einsum("cp,phw->chw", colours, w) / (w.sum(0) + self.gray)
        return out


class SpreadRule:
    """`HintSpread`'s spread colour as the prediction."""

    takes_hints = True

    def __init__(self, spread: HintSpread) -> None:
        self.spread = spread

    def predict_ab(self, L: Tensor, *, hints: Tensor | None = None) -> Tensor:
        if hints is None:
            return torch.zeros(L.shape[0], 2, *L.shape[-2:])
        return self.spread(L, hints)[:, :2]


class Blend:
    """A trained colorizer's prediction leaning to the default `HintSpread` by its confidence
    (`HintSpread.lean`)."""

    takes_hints = True

    def __init__(self, colorizer) -> None:
        self.colorizer, self.spread = colorizer, HintSpread()

    def predict_ab(self, L: Tensor, *, hints: Tensor | None = None) -> Tensor:
        ab = self.colorizer.predict_ab(L, hints=hints)
        return ab if hints is None else self.spread.lean(ab, self.spread(L, hints))


def rules(scale: float) -> dict:
    """Every rule tried, by name (σ in pixels at 64 px, times ``scale``)."""
    side = 64 * scale
    return {
        "flat": PixelRule("flat", gray=0.0),
        "nearest": PixelRule("nearest", gray=0.0),
        **{f"gaussian σ={g}": PixelRule("bilateral", g * scale) for g in (4, 8, 16)},
        **{
            f"bilateral σ={g} ρ={r}": PixelRule("bilateral", g * scale, r)
            for g in (8, 16, 32)
            for r in (5, 10, 20)
        },
        **{
            f"spread σ={g} ρ={r} cells={c}": SpreadRule(HintSpread(g * scale / side, r, 0.05, c))
            for g in (8, 16)
            for r in (10.0, None)
            for c in (8, 16, 32)
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.environ.get("COLORLAB_SCENES", DEFAULT_SCENES))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=2000, help="data.limit; 0: every photo")
    parser.add_argument("--split", default="val", choices=["train", "val"])
    parser.add_argument("--points", type=int, nargs="+", default=[1, 5, 10, 50])
    parser.add_argument("--only", nargs="*", help="the rules whose names start so")
    parser.add_argument("--blend", nargs="*", default=[], help="checkpoints to score beside")
    args = parser.parse_args()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "data=folder",
                f"data.root={args.root}",
                f"data.limit={args.limit or 'null'}",
                f"data.image_size={args.size}",
                "data.num_workers=0",
            ],
        )
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    loader = datamodule.val_dataloader() if args.split == "val" else datamodule.train_dataloader()
    scored = rules(args.size / 64)
    if args.only is not None:
        scored = {k: v for k, v in scored.items() if any(k.startswith(o) for o in args.only)}
    for path in args.blend:
        colorizer = load_colorizer(path, device="cpu")
        scored[f"{path}"] = colorizer
        scored[f"{path} leaning to the spread"] = Blend(colorizer)
    sweep = HintSweep(args.points, square=paper_square(args.size), seed=0)
    results, _ = evaluate_colorizers(
        {"gray": None, **scored}, loader, torch.device("cpu"), 0, hints=sweep
    )
    for name, values in results.items():
        print(json.dumps({"rule": name, "psnr": round(values["psnr"], 2)}, ensure_ascii=False))


if __name__ == "__main__":
    main()
