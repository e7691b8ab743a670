"""``python -m colorlab.demo ckpt=…``: a local web page that colorizes with any checkpoint
(`colorlab.page`), served on ``demo.host``:``demo.port`` (loopback by default). The colorize
action is also the page's API endpoint ``/colorize`` (image first; checkpoint and temperature
have defaults), for ``gradio_client`` and scripts.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
from pathlib import Path

import hydra
from omegaconf import DictConfig, ListConfig
from PIL import Image

from colorlab.cli.runner import one_line_errors, run_app
from colorlab.cli.validation import DEMO_RULES, validate
from colorlab.configs import config_dir
from colorlab.data.images import IMAGE_EXTENSIONS
from colorlab.errors import ColorlabError, OptionError
from colorlab.inference.merge import return_freed_memory_to_the_os
from colorlab.web import Colorizers, disable_analytics, example_scenes, find_checkpoints


def serve(cfg: DictConfig, block: bool = True):
    """Build the page for ``cfg`` and serve it; returns Gradio's (app, local URL, share URL)."""
    disable_analytics()
    from colorlab.page import build_page

    validate(cfg, DEMO_RULES)
    options = cfg.demo
    port = options.port
    paths = list(cfg.ckpt) if isinstance(cfg.ckpt, ListConfig) else [str(cfg.ckpt)]
    checkpoints = find_checkpoints([str(p) for p in paths])
    # Everything the page writes (Gradio's copies of uploads, each request's results, which
    # Gradio then serves in place instead of copying) lives in one folder of this start,
    # removed at exit.
    work = Path(tempfile.mkdtemp(prefix="colorlab-demo-"))
    atexit.register(shutil.rmtree, work, True)
    os.environ["GRADIO_TEMP_DIR"] = str(work)
    if options.examples:
        folder = Path(str(options.examples)).expanduser()
        if not folder.is_dir():
            raise OptionError("demo.examples", str(folder), "give a folder of photos or null")
        examples = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)[:12]
    else:
        examples = example_scenes(work / "examples")
    return_freed_memory_to_the_os()  # as colorize does: memory per request stays bounded
    max_megapixels = float(cfg.colorize.max_megapixels)
    Image.MAX_IMAGE_PIXELS = int(max_megapixels * 1e6)
    colorizers = Colorizers(str(cfg.colorize.device), options.models_kept, cfg.trust_checkpoint)
    (work / "results").mkdir()
    page = build_page(checkpoints, colorizers, examples, max_megapixels, work / "results")
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
        # SIGTERM (a service manager's stop) ends the page as Ctrl-C does, its files removed
        signal.signal(signal.SIGTERM, _stop)
        try:
            page.block_thread()
        finally:
            page.results.clear()
            shutil.rmtree(work, ignore_errors=True)
    return launched


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="demo")
@one_line_errors
def _hydra_main(cfg: DictConfig) -> None:
    serve(cfg)


def main() -> None:
    run_app(_hydra_main)


if __name__ == "__main__":
    main()
