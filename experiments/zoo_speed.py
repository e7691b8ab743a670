"""CPU (or GPU) colorize speed of the published networks beside the baseline, through
``python -m colorlab.bench``'s colorize row: photos of ``--size`` px colorized from files to
files, and the network alone at its own 256 px.

Speed does not depend on the weights' values, and the authors' files cannot be downloaded
everywhere: without ``--hub`` this writes weights in the released layout (random, from
colorlab's own ECCV16 and SIGGRAPH17 in their released layout, named as the files name them)
into a temporary ``$TORCH_HOME``; with ``--hub DIR`` it uses the real files there.

    python experiments/zoo_speed.py [--size 256] [--images 32] [--hub ~/.cache/torch]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from colorlab.losses import ClassificationLoss
from colorlab.zoo import ECCV16, PUBLISHED, SIGGRAPH17


def released_layout(name: str) -> dict[str, torch.Tensor]:
    """A state dict named as the authors' file of ``name`` names it (random weights)."""
    head = ClassificationLoss.head_for(temperature=1.0)
    if name == "eccv16":
        net = ECCV16(head=head, layout="released")
        state = {k: v for k, v in net.state_dict().items() if not k.startswith("head.")}
        state["model8.6.weight"] = net.head.conv.weight.detach()
        state["model8.6.bias"] = net.head.conv.bias.detach()
        centres = torch.randint(-11, 12, (313, 2)).float() * 10
        state["model_out.weight"] = (centres / 110).t()[:, :, None, None]
        return state
    net = SIGGRAPH17(head=head, layout="released")
    state = {}
    for key, value in net.state_dict().items():
        if key.startswith("head.model_out."):
            state[key.removeprefix("head.")] = value
        elif key.startswith("head.model_class.conv."):
            state["model_class.0." + key.rsplit(".", 1)[1]] = value
        elif not key.startswith("head."):
            state[key] = value
    return state


def bench(ckpt: str, size: int, images: int, env: dict[str, str], out: Path) -> dict:
    run_dir = out / ckpt.replace(":", "_").replace("/", "_")
    rows = "[colorize]" if ckpt != "baseline" else "[epoch,colorize]"
    command = [
        sys.executable, "-m", "colorlab.bench", f"bench.rows={rows}", "trainer.accelerator=cpu",
        f"bench.colorize_size={size}", f"bench.colorize_images={images}", "bench.colorize_batch=4",
        "logger=none", f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    if ckpt == "baseline":  # a baseline trained for one short epoch at 256 px
        command += ["bench.epochs=1", "data.num_images=32", "data.image_size=256"]
    else:
        command += [f"bench.ckpt={ckpt}"]
    subprocess.run(command, check=True, env=env)
    lines = (run_dir / "bench.jsonl").read_text().splitlines()
    return next(json.loads(line) for line in lines if '"colorize"' in line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--hub", type=Path, help="a $TORCH_HOME holding the released files")
    parser.add_argument("--out", type=Path, default=Path("runs/zoo_speed"))
    args = parser.parse_args()
    home = args.hub or Path(tempfile.mkdtemp(prefix="zoo-home-"))
    if args.hub is None:
        folder = home / "hub" / "checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        for name, entry in PUBLISHED.items():
            torch.save(released_layout(name), folder / entry.file_name)
    env = os.environ | {"TORCH_HOME": str(home)}
    for ckpt in ("baseline", "zoo:eccv16", "zoo:siggraph17"):
        row = bench(ckpt, args.size, args.images, env, args.out)
        print(json.dumps({"ckpt": ckpt, **row}), flush=True)
