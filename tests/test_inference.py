"""Colorizing photos and videos with a trained checkpoint: API and ``colorlab.colorize``."""

import logging
import os

import av
import numpy as np
import pytest
import torch
from PIL import Image

from colorlab import load_colorizer
from colorlab.color import rgb_to_l_ab
from colorlab.data.images import open_rgb
from colorlab.errors import ColorlabError
from colorlab.inference.jobs import plan_jobs
from colorlab.inference.video import colorize_video
from colorlab.training.module import ColorizationModule
from conftest import GOOD, colourful, run_cli, write_clip


def lightness(picture: Image.Image) -> np.ndarray:
    rgb = torch.from_numpy(np.asarray(picture.convert("RGB"), np.float32) / 255).permute(2, 0, 1)[
        None
    ]
    return rgb_to_l_ab(rgb)[0][0, 0].numpy()


@pytest.fixture(scope="session")
def colorizer(checkpoints):
    return load_colorizer(checkpoints["baseline"], device="cpu")


def test_api_accepts_paths_pil_and_arrays_and_keeps_size(colorizer, tmp_path):
    colourful((517, 333)).save(tmp_path / "odd.png")
    out = colorizer.colorize(tmp_path / "odd.png")
    assert out.mode == "RGB" and out.size == (517, 333)
    gray = np.asarray(colourful((41, 29)).convert("L"))
    assert colorizer.colorize(gray).size == (41, 29)
    assert colorizer.colorize(gray.astype(np.float32) / 255).size == (41, 29)
    batch = colorizer.colorize_batch([Image.fromarray(gray), str(tmp_path / "odd.png")])
    assert [p.size for p in batch] == [(41, 29), (517, 333)]


def test_output_keeps_the_inputs_lightness(colorizer):
    source = colourful((200, 150), seed=3)
    out = colorizer.colorize(source)
    diff = np.abs(lightness(out) - lightness(source))
    assert (
        np.median(diff) < 0.5 and np.percentile(diff, 99) < 5
    )  # gamut clipping aside, L is the input's


def test_exif_rotated_jpeg_comes_back_displayed_the_same_way(colorizer, awkward_folder):
    source = awkward_folder / "exif_rotated.jpg"
    out = colorizer.colorize(source)
    assert out.size == (40, 48)
    L = lightness(out)
    assert L[:20].mean() > L[-20:].mean() + 10  # displayed: red (L≈48) on top, blue (L≈30) below
    assert np.median(np.abs(L - lightness(open_rgb(source)))) < 1.5


def test_bad_array_and_type_are_clear_errors(colorizer):
    with pytest.raises(ValueError, match="H×W"):
        colorizer.colorize(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(TypeError, match="path, PIL image or numpy array"):
        colorizer.colorize(42)


@pytest.mark.slow
def test_cli_colorizes_a_folder_and_skips_the_corrupt_file(checkpoints, tmp_path):
    source = tmp_path / "in"
    (source / "nested").mkdir(parents=True)
    colourful((517, 333)).save(source / "odd.jpg", quality=95)
    Image.fromarray(np.asarray(colourful((60, 40)).convert("L"))).save(
        source / "nested" / "gray.png"
    )
    (source / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    result = run_cli(
        "colorlab.colorize",
        f"ckpt={checkpoints['baseline']}",
        f"input={source}",
        "output=out",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "broken.jpg" in result.stdout + result.stderr
    assert (
        "2 images and 0 videos (0 frames) colorized into out; 1 unreadable files skipped"
        in result.stdout
    )
    odd = Image.open(tmp_path / "out" / "odd.jpg")
    assert odd.size == (517, 333)
    gray_out = Image.open(tmp_path / "out" / "nested" / "gray.png")
    assert gray_out.mode == "RGB" and gray_out.size == (60, 40)
    diff = np.abs(lightness(odd) - lightness(Image.open(source / "odd.jpg")))
    assert np.median(diff) < 1.5  # within JPEG tolerance
    assert not (tmp_path / "out" / "broken.jpg").exists()


def test_glob_suffix_format_and_no_overwriting(tmp_path):
    for name in ("a.jpg", "b.png", "c.txt"):
        (tmp_path / name).write_bytes(b"x")
    jobs = plan_jobs(str(tmp_path / "*"), tmp_path / "out", suffix="_color", fmt="png")
    assert sorted(j.target.name for j in jobs) == ["a_color.png", "b_color.png"]
    with pytest.raises(ColorlabError, match="would overwrite an input"):
        plan_jobs(str(tmp_path), tmp_path)
    assert len(plan_jobs(str(tmp_path), tmp_path, suffix="_color")) == 2
    with pytest.raises(ColorlabError, match="choose one of: png, jpg"):
        plan_jobs(str(tmp_path), tmp_path / "out", fmt="gif")
    with pytest.raises(ColorlabError, match="matches no image or video"):
        plan_jobs(str(tmp_path / "*.nothing"), tmp_path / "out")


def _video_facts(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return (
            frames,
            (stream.codec_context.width, stream.codec_context.height),
            stream.average_rate,
            len(container.streams.audio),
        )


@pytest.mark.parametrize("suffix", ["/../../x", "..", "a\\b"])
def test_a_suffix_that_would_leave_the_output_folder_is_refused(tmp_path, suffix):
    colourful().save(tmp_path / "photo.png")
    with pytest.raises(ColorlabError) as error:
        plan_jobs(str(tmp_path / "photo.png"), tmp_path / "out", suffix=suffix)
    assert str(error.value) == (
        f"suffix={suffix!r} is not allowed; use letters, digits, _ or - (it goes inside file names)"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_video_keeps_frames_size_rate_and_audio(checkpoints, tmp_path):
    write_clip(tmp_path / "clip.mp4", frames=16, size=(64, 48), fps=12, audio=True)
    result = run_cli(
        "colorlab.colorize",
        f"ckpt={checkpoints['baseline']}",
        f"input={tmp_path / 'clip.mp4'}",
        "output=out",
        "colorize.temporal=ema",
        "colorize.temporal_smoothing=0.5",
        "colorize.batch_size=5",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    frames, size, rate, audio = _video_facts(tmp_path / "out" / "clip.mp4")
    assert (frames, size, rate) == (16, (64, 48), 12)
    assert audio == 1


# -- checkpoints describe themselves ---------------------------------------------------------
def test_checkpoint_alone_rebuilds_the_model(checkpoints):
    module = ColorizationModule.from_checkpoint(checkpoints["vgg16"])
    assert type(module.net.encoder).__name__ == "Backbone" and module.net.encoder.name == "vgg16"
    assert module.image_size == 64
    state = torch.load(checkpoints["vgg16"], weights_only=False)["state_dict"]
    assert all(torch.equal(v, state[k]) for k, v in module.state_dict().items())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("content", "message"),
    [(b"definitely not a checkpoint", "cannot be read"), (None, "is not a colorlab checkpoint")],
)
def test_corrupt_or_foreign_checkpoint_is_one_line(tmp_path, content, message):
    path = tmp_path / "bad.ckpt"
    if content is None:
        torch.save({"state_dict": {}, "something": 1}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(ColorlabError, match=message):
        ColorizationModule.from_checkpoint(path)
    (tmp_path / "in.png").write_bytes(b"")
    result = run_cli(
        "colorlab.colorize",
        f"ckpt={path}",
        f"input={tmp_path / 'in.png'}",
        "output=out",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"colorlab: error: checkpoint {path}" if content else f"colorlab: error: {path}"
        )
    )


def test_odd_sized_video_in_another_container(colorizer, tmp_path):
    with av.open(str(tmp_path / "odd.mkv"), "w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 65, 49, "yuv444p"
        for i in range(7):
            frame = np.full((49, 65, 3), 20 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    written = colorize_video(
        colorizer, tmp_path / "odd.mkv", tmp_path / "out" / "odd.mkv", batch_size=3
    )
    assert written == 7
    assert _video_facts(tmp_path / "out" / "odd.mkv") == (7, (65, 49), 10, 0)


def test_a_truncated_video_is_said_to_have_lost_frames(colorizer, tmp_path, caplog):
    whole = tmp_path / "whole.mkv"  # Matroska: no frame count, a duration in its header
    write_clip(whole, frames=20, size=(128, 96))
    data = whole.read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: int(len(data) * 0.8)])
    with caplog.at_level(logging.WARNING):
        written = colorize_video(colorizer, tmp_path / "cut.mkv", tmp_path / "out" / "cut.mkv")
    assert 0 < written < 19
    assert f"only {written} of its 20 frames could be decoded (the file may be truncated)" in (
        caplog.text
    )
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert colorize_video(colorizer, whole, tmp_path / "out" / "whole.mkv") == 20
    assert "could be decoded" not in caplog.text
    (tmp_path / "stub.mkv").write_bytes(data[: int(len(data) * 0.3)])  # a header, no frame
    with pytest.raises(ColorlabError, match="stub.mkv: no frame could be decoded"):
        colorize_video(colorizer, tmp_path / "stub.mkv", tmp_path / "out" / "stub.mkv")
    assert not (tmp_path / "out" / "stub.mkv").exists()
    mp4 = tmp_path / "whole.mp4"  # MP4 keeps its index at the end: cut, it cannot be opened
    write_clip(mp4, frames=20)
    (tmp_path / "cut.mp4").write_bytes(mp4.read_bytes()[:-200])
    with pytest.raises(ColorlabError, match="cut.mp4: cannot be read as a video"):
        colorize_video(colorizer, tmp_path / "cut.mp4", tmp_path / "out" / "cut.mp4")


def test_unreadable_video_is_a_clear_error(colorizer, tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    with pytest.raises(ColorlabError, match="broken.mp4: cannot be read as a video"):
        colorize_video(colorizer, tmp_path / "broken.mp4", tmp_path / "out.mp4")


# -- output plans that would lose something are refused up front ------------------------------
def _refused(result):
    assert result.returncode == 2, result.stderr[-2000:]
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_two_inputs_that_would_land_on_one_output_are_refused(checkpoints, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        colourful(seed=len(folder)).save(tmp_path / folder / "x.jpg")
    colourful().save(tmp_path / "a" / "y.jpg")
    colourful().save(tmp_path / "a" / "y.png")
    glob_run = run_cli(
        "colorlab.colorize",
        f"ckpt={checkpoints['baseline']}",
        f"input={tmp_path}/*/x.jpg",
        "output=out",
        cwd=tmp_path,
    )
    message = _refused(glob_run)
    assert "a/x.jpg and " in message and "b/x.jpg would both be written to out/x.jpg" in message
    same_format = run_cli(
        "colorlab.colorize",
        f"ckpt={checkpoints['baseline']}",
        f"input={tmp_path}/a/y.*",
        "output=out",
        "colorize.format=png",
        cwd=tmp_path,
    )
    assert "would both be written to out/y.png" in _refused(same_format)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_existing_files_and_links_to_inputs_in_the_output_are_never_overwritten(
    checkpoints, tmp_path
):
    (tmp_path / "in").mkdir()
    colourful().save(tmp_path / "in" / "photo.png")
    colourful(seed=3).save(tmp_path / "in" / "other.png")
    original = (tmp_path / "in" / "photo.png").read_bytes()
    (tmp_path / "out").mkdir()
    os.link(tmp_path / "in" / "photo.png", tmp_path / "out" / "photo.png")  # a hard link
    linked = run_cli(
        "colorlab.colorize",
        f"ckpt={checkpoints['baseline']}",
        "input=in",
        "output=out",
        cwd=tmp_path,
    )
    assert _refused(linked) == (
        "colorlab: error: output out/photo.png would overwrite an existing file; "
        "choose an empty output folder or set colorize.suffix"
    )
    assert (tmp_path / "in" / "photo.png").read_bytes() == original
    assert not (tmp_path / "out" / "other.png").exists()  # refused before anything was written
    with_suffix = run_cli(
        "colorlab.colorize",
        f"ckpt={checkpoints['baseline']}",
        "input=in",
        "output=out",
        "colorize.suffix=_color",
        cwd=tmp_path,
    )
    assert with_suffix.returncode == 0, with_suffix.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "other_color.png",
        "photo.png",
        "photo_color.png",
    ]
    assert (tmp_path / "in" / "photo.png").read_bytes() == original


@pytest.mark.slow
def test_an_animated_gif_is_reported_not_silently_cut(checkpoints, tmp_path):
    frames = [colourful(seed=i) for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    result = run_cli(
        "colorlab.colorize",
        f"ckpt={checkpoints['baseline']}",
        f"input={tmp_path / 'anim.gif'}",
        "output=out",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "anim.gif has 3 frames: only the first is colorized" in result.stdout + result.stderr
    assert "1 animated images reduced to their first frame" in result.stdout
    assert (tmp_path / "out" / "anim.gif").is_file()


def test_a_video_that_fails_half_way_leaves_no_file_under_its_name(
    colorizer, tmp_path, monkeypatch
):
    write_clip(tmp_path / "clip.mp4", frames=12)
    calls = []

    def fail_on_second_batch(L, temperature=None):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return torch.zeros(L.shape[0], 2, *L.shape[-2:])

    monkeypatch.setattr(colorizer.net, "predict_ab", fail_on_second_batch)
    with pytest.raises(RuntimeError, match="out of memory"):
        colorize_video(
            colorizer, tmp_path / "clip.mp4", tmp_path / "out" / "clip.mp4", batch_size=4
        )
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.slow
def test_a_picture_over_the_pixel_limit_is_named_with_the_way_past_it(checkpoints, tmp_path):
    colourful((48, 40)).save(tmp_path / "big.png")  # 1,920 pixels against a 0.001 MP limit
    result = run_cli(
        "colorlab.colorize",
        f"ckpt={checkpoints['baseline']}",
        f"input={tmp_path / 'big.png'}",
        "output=out",
        "colorize.max_megapixels=0.001",
        cwd=tmp_path,
    )
    assert result.returncode == 2  # nothing was colorized: not a success
    output = result.stdout + result.stderr
    assert "skipped too large image" in output and "unreadable" not in output
    assert "big.png (Image size (1920 pixels) exceeds limit of 1000 pixels" in output
    assert "colorize.max_megapixels raises it" in output
    assert result.stderr.strip().splitlines()[-1] == (
        "colorlab: error: nothing colorized: all 1 pictures are larger than "
        "colorize.max_megapixels=0.001 allows; raise it (megapixels per picture)"
    )
    (tmp_path / "mixed").mkdir()
    colourful((48, 40)).save(tmp_path / "mixed" / "big.png")
    colourful((20, 20)).save(tmp_path / "mixed" / "small.png")  # 400 pixels: allowed
    mixed = run_cli(
        "colorlab.colorize",
        f"ckpt={checkpoints['baseline']}",
        f"input={tmp_path / 'mixed'}",
        "output=mixed_out",
        "colorize.max_megapixels=0.001",
        cwd=tmp_path,
    )
    assert mixed.returncode == 0, mixed.stderr[-2000:]
    assert (
        "colorlab: 1 images and 0 videos (0 frames) colorized into mixed_out; 0 unreadable files "
        "skipped; 1 pictures above colorize.max_megapixels=0.001 skipped"
    ) in mixed.stdout
    assert sorted(p.name for p in (tmp_path / "mixed_out").iterdir()) == ["small.png"]
    allowed = run_cli(
        "colorlab.colorize",
        f"ckpt={checkpoints['baseline']}",
        f"input={tmp_path / 'big.png'}",
        "output=out",
        cwd=tmp_path,
    )
    assert allowed.returncode == 0 and (tmp_path / "out" / "big.png").is_file()


def test_an_output_that_is_a_file_is_one_line(checkpoints, tmp_path):
    colourful().save(tmp_path / "photo.png")
    (tmp_path / "out").write_text("not a folder")
    result = run_cli(
        "colorlab.colorize",
        f"ckpt={checkpoints['baseline']}",
        f"input={tmp_path / 'photo.png'}",
        "output=out",
        cwd=tmp_path,
    )
    assert (
        _refused(result)
        == "colorlab: error: output='out' is a file; give a folder for the colorized files"
    )


def today(colorizer, picture: Image.Image) -> np.ndarray:
    """colorize as computed before the fast path: kornia's float Lab of the whole picture
    (L, its antialiased shrink for the model, bilinear ab, Lab → sRGB), rounded to 8 bits."""
    from colorlab.color import lab_batch, to_rgb
    from colorlab.data.images import to_uint8_chw
    from colorlab.pictures import to_pil

    L = lab_batch(to_uint8_chw(picture)[None])["L"]
    ab = colorizer.predict_small_ab(colorizer.shrink(L))
    ab = torch.nn.functional.interpolate(ab, size=L.shape[-2:], mode="bilinear")
    return np.asarray(to_pil(to_rgb(L, ab)[0])).astype(int)


def assert_within_one_level(new: np.ndarray, old: np.ndarray) -> None:
    assert new.shape == old.shape
    assert np.abs(new - old).max() <= 1
    assert (new != old).mean() < 0.01


def test_colorize_equals_the_float_lab_path_for_every_kind_of_photo(
    colorizer, awkward_folder, tmp_path
):
    from colorlab.inference.colorizer import as_rgb_image

    colourful((517, 333), seed=4).convert("L").save(tmp_path / "gray_odd.png")
    gray16 = np.asarray(colourful((37, 53), seed=9).convert("L")).astype(np.uint16) * 257
    Image.fromarray(gray16).save(tmp_path / "gray16.png")
    photos = [p for p in sorted(awkward_folder.rglob("*")) if p.name in GOOD]
    photos += [tmp_path / "gray_odd.png", tmp_path / "gray16.png"]
    modes = {Image.open(p).mode for p in photos}
    assert {"RGB", "L", "RGBA", "CMYK", "P", "I;16"} <= modes, modes
    for photo in photos:
        new = np.asarray(colorizer.colorize(photo)).astype(int)
        assert_within_one_level(new, today(colorizer, as_rgb_image(photo)))


def test_strips_and_the_torch_kernels_give_the_same_picture(colorizer, monkeypatch):
    from colorlab.inference import merge as inference

    picture = colourful((517, 333), seed=4)
    old = today(colorizer, picture)
    whole = colorizer.lightness(picture)
    ab_small = colorizer.predict_lightness_ab([whole])
    assert_within_one_level(np.asarray(colorizer.merge(ab_small, whole)).astype(int), old)
    # a photo too large to keep its lightness goes in strips (here 34 strips of 10 rows)
    monkeypatch.setattr(inference, "KEEP_PIXELS", 0)
    monkeypatch.setattr(inference, "STRIP_PIXELS", 517 * 10 + 3)
    for kernels in ("numba", "torch"):  # torch: the GPU's path, here on the CPU
        light = inference.Lightness(picture, colorizer.device, kernels=kernels)
        assert torch.allclose(light.small(colorizer.size), whole.small(colorizer.size), atol=1e-3)
        strips = np.asarray(colorizer.merge(ab_small, light)).astype(int)
        assert_within_one_level(strips, old)
    with pytest.raises(ColorlabError, match="kernels='cuda'.*choose one of: numba, torch"):
        inference.Lightness(picture, colorizer.device, kernels="cuda")


@pytest.mark.parametrize("kernels", ["numba", "torch"])
def test_the_merge_equals_kornia_out_of_gamut_too(kernels):
    """Vivid random chroma (|a*|, |b*| up to 100) on dark and light pixels: the clipping of
    out-of-gamut colours is kornia's too."""
    from colorlab.color import lab_batch, to_rgb
    from colorlab.data.images import to_uint8_chw
    from colorlab.inference.merge import Lightness, merge
    from colorlab.pictures import to_pil

    picture = colourful((301, 207), seed=11)
    generator = torch.Generator().manual_seed(3)
    ab_small = torch.rand(1, 2, 24, 24, generator=generator) * 1.6 - 0.8
    L = lab_batch(to_uint8_chw(picture)[None])["L"]
    ab = torch.nn.functional.interpolate(ab_small, size=L.shape[-2:], mode="bilinear")
    old = np.asarray(to_pil(to_rgb(L, ab)[0])).astype(int)
    new = np.asarray(merge(ab_small, Lightness(picture, torch.device("cpu"), kernels)))
    assert_within_one_level(new.astype(int), old)
    assert (old == 0).mean() > 0.01 and (old == 255).mean() > 0.01  # clipped at both ends


def test_threaded_colorize_files_match_colorize_and_stay_within_the_pixel_budget(
    colorizer, awkward_folder, tmp_path, monkeypatch
):
    from colorlab.inference import jobs as colorize_jobs

    sizes = [(64, 48), (517, 333), (33, 97), (120, 80), (64, 48), (200, 150), (90, 90)]
    for i, size in enumerate(sizes):
        colourful(size, seed=20 + i).save(awkward_folder / f"extra_{i}.png")
    largest = max(w * h for w, h in sizes)
    monkeypatch.setattr(colorize_jobs, "BATCH_PIXELS", 2 * largest)
    in_flight = []
    read = colorize_jobs._ImagePipeline._read

    def recording_read(self, job):
        in_flight.append(self.pixels)
        return read(self, job)

    monkeypatch.setattr(colorize_jobs._ImagePipeline, "_read", recording_read)
    jobs = plan_jobs(str(awkward_folder), tmp_path / "out", fmt="png")  # lossless outputs
    counts = colorize_jobs.colorize_files(colorizer, jobs, batch_size=2, threads=3)
    assert counts["skipped"] == 3 and counts["images"] == len(jobs) - 3
    assert 0 < max(in_flight) <= 2 * largest
    for job in jobs:
        if job.source.name in ("truncated.jpg", "empty.jpg", "text.png"):
            assert not job.target.exists()
            continue
        alone = np.asarray(colorizer.colorize(job.source)).astype(int)
        assert_within_one_level(np.asarray(Image.open(job.target)).astype(int), alone)


def test_a_failed_write_in_a_thread_stops_colorize_with_its_error(colorizer, tmp_path, monkeypatch):
    from colorlab.inference import jobs as colorize_jobs

    for i in range(6):
        colourful((40, 30), seed=i).save(tmp_path / f"p{i}.png")
    save = colorize_jobs.save_picture

    def failing_save(picture, target):
        if target.name == "p2.png":
            raise ColorlabError(f"cannot write {target}: No space left on device")
        save(picture, target)

    monkeypatch.setattr(colorize_jobs, "save_picture", failing_save)
    jobs = plan_jobs(str(tmp_path / "p*.png"), tmp_path / "out")
    with pytest.raises(ColorlabError, match="p2.png: No space left"):
        colorize_jobs.colorize_files(colorizer, jobs, batch_size=2, threads=2)
    assert not (tmp_path / "out" / "p2.png").exists()
    assert not list((tmp_path / "out").glob(".*partial*"))
