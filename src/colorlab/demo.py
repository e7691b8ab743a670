"""``python -m colorlab.demo ckpt=…``: a local web page that colorizes with any checkpoint
(`colorlab.web`), served on ``demo.host``:``demo.port`` (loopback by default). The colorize
action is also the page's API endpoint ``/colorize`` (image first; checkpoint and temperature
have defaults), for ``gradio_client`` and scripts.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import hydra
from omegaconf import DictConfig, ListConfig
from PIL import Image

from colorlab.cli.runner import config_dir, one_line_errors, run_app
from colorlab.data.images import IMAGE_EXTENSIONS
from colorlab.errors import ColorlabError, OptionError
from colorlab.web import Colorizers, build_page, disable_analytics, example_scenes, find_checkpoints


def serve(cfg: DictConfig, block: bool = True):
    """Build the page for ``cfg`` and serve it; returns Gradio's (app, local URL, share URL)."""
    disable_analytics()

    options = cfg.demo
    port = options.port
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise OptionError("demo.port", port, "use a port number from 1 to 65535")
    paths = list(cfg.ckpt) if isinstance(cfg.ckpt, ListConfig) else [str(cfg.ckpt)]
    checkpoints = find_checkpoints([str(p) for p in paths])
    work = Path(tempfile.mkdtemp(prefix="colorlab-demo-"))
    if options.examples:
        folder = Path(str(options.examples)).expanduser()
        if not folder.is_dir():
            raise OptionError("demo.examples", str(folder), "give a folder of photos or null")
        examples = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)[:12]
    else:
        examples = example_scenes(work / "examples")
    max_megapixels = float(cfg.colorize.max_megapixels)
    Image.MAX_IMAGE_PIXELS = int(max_megapixels * 1e6)
    colorizers = Colorizers(str(cfg.colorize.device), int(options.models_kept))
    page = build_page(checkpoints, colorizers, examples, max_megapixels, work)
    page.queue(max_size=int(options.queue_size), default_concurrency_limit=1)
    try:
        launched = page.launch(
            server_name=str(options.host),
            server_port=port,
            share=bool(options.share),
            ssr_mode=False,
            theme=page.theme_for_launch,
            footer_links=["api"],
            allowed_paths=[str(work)],
            prevent_thread_lock=True,
            quiet=True,
        )
    except OSError as error:
        raise ColorlabError(
            f"cannot serve on {options.host}:{port}: {error}; set demo.port"
        ) from error
    print(
        f"colorlab: demo of {len(checkpoints)} checkpoints at {launched[1]} (Ctrl-C stops it)",
        flush=True,
    )
    if block:
        page.block_thread()
    return launched


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="demo")
@one_line_errors
def _hydra_main(cfg: DictConfig) -> None:
    serve(cfg)


def main() -> None:
    run_app(_hydra_main)


if __name__ == "__main__":
    main()
