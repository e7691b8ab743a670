import logging
import re
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from colorlab.color import colorfulness, rgb_to_l_ab
from colorlab.configs import build
from colorlab.data import (
    FolderDataModule,
    SyntheticDataModule,
    SyntheticScenes,
    cache,
    render_scene,
)
from colorlab.data.cache import CachedBatches, choose_cache
from colorlab.data.folder import limit_files, split_files, vet_images
from colorlab.data.images import UnreadableImageError, load_uint8, open_rgb
from colorlab.data.painting import _Painter, render_scenes
from colorlab.data.sampling import EpochOrder
from colorlab.data.scenes import draw_scene
from colorlab.data.transforms import build_augmentation, prepare_batch
from colorlab.errors import ColorlabError
from conftest import BLACK_WHITE, GOOD, SCENES, UNREADABLE, colourful


# -- synthetic scenes ------------------------------------------------------------------------
def test_synthetic_is_deterministic_any_size_and_colourful():
    assert np.array_equal(render_scene(7, 3, 48), render_scene(7, 3, 48))
    assert not np.array_equal(render_scene(7, 3, 48), render_scene(7, 4, 48))
    assert not np.array_equal(render_scene(7, 3, 48), render_scene(8, 3, 48))
    for size in (8, 33, 100):
        assert render_scene(0, 0, size).shape == (size, size, 3)
    scenes = SyntheticScenes(12, 32, seed=1)
    batch = torch.stack([scenes[i] for i in range(len(scenes))])
    assert batch.dtype == torch.uint8 and batch.shape == (12, 3, 32, 32)
    assert colorfulness(batch.float() / 255).min() > 15  # every scene has colour to learn


def test_a_scene_does_not_depend_on_the_batch_it_is_painted_in():
    # Scenes with and without sun, clouds, mountains, forest, water and 2..10 buildings,
    # painted together, in chunks and alone.
    together = render_scenes(5, range(24), 40, dusk_fraction=0.5)
    in_chunks = render_scenes(5, range(24), 40, dusk_fraction=0.5, chunk=5)
    assert torch.equal(together, in_chunks)
    for i in (0, 7, 23):
        alone = torch.from_numpy(render_scene(5, i, 40, dusk_fraction=0.5)).permute(2, 0, 1)
        assert (together[i].int() - alone.int()).abs().max() <= 1


def test_synthetic_sky_is_blue_above_and_ground_varies():
    scenes = np.stack([render_scene(0, i, 64) for i in range(40)]).astype(float)
    top = scenes[:, :4].mean(axis=(0, 1, 2))  # top rows: sky
    assert top[2] > top[0] + 40  # blue dominates red in the sky
    assert scenes[:, -8:].std(axis=0).mean() > 20  # grass, water and streets differ


def test_dusk_skies_are_as_light_as_day_skies_but_another_colour():
    day = np.stack([render_scene(0, i, 64, dusk_fraction=0.0) for i in range(6)]).astype(float)
    dusk = np.stack([render_scene(0, i, 64, dusk_fraction=1.0) for i in range(6)]).astype(float)
    assert np.array_equal(day[0], render_scene(0, 0, 64))  # 0: the scenes of before
    top_day, top_dusk = day[:, :3].mean(axis=(0, 1, 2)), dusk[:, :3].mean(axis=(0, 1, 2))
    assert top_day[2] > top_day[0] + 40 and top_dusk[0] > top_day[0] + 40  # blue vs violet
    # The same scenes painted at day and at dusk: pixel for pixel the same lightness (gray
    # cannot tell them apart), another colour over the sky.
    scenes = [draw_scene(0, i, 0.5) for i in range(40)]
    at_day, at_dusk = (
        _Painter([replace(s, dusk=flag) for s in scenes], 48, torch.device("cpu")).render()
        for flag in (False, True)
    )
    lightness = [rgb_to_l_ab(pictures.float() / 255)[0] for pictures in (at_day, at_dusk)]
    difference = (lightness[0] - lightness[1]).abs()
    assert difference.mean() < 0.2 and difference.max() < 3  # uint8 rounding, gamut edges
    assert (at_day != at_dusk).any(dim=1).float().mean() > 0.25  # the skies changed colour


def test_synthetic_splits_are_disjoint_ranges():
    dm = SyntheticDataModule(num_images=20, val_fraction=0.2, test_fraction=0.1, image_size=16)
    dm.setup()
    sizes = {k: len(v) for k, v in dm.datasets.items()}
    assert sizes == {"train": 14, "val": 4, "test": 2}
    firsts = sorted(ds.first_index for ds in dm.datasets.values())
    assert firsts == [0, 14, 18]


# -- decoding awkward files ------------------------------------------------------------------
def test_unreadable_files_raise_with_name(awkward_folder):
    for name in UNREADABLE:
        with pytest.raises(UnreadableImageError) as error:
            open_rgb(awkward_folder / name)
        assert name in str(error.value)


def test_modes_convert_to_correct_rgb(awkward_folder):
    reference = np.asarray(colourful(seed=5), dtype=float)
    cmyk = np.asarray(open_rgb(awkward_folder / "cmyk.jpg"), dtype=float)
    assert np.abs(cmyk - reference).mean() < 8  # CMYK JPEG decodes to the original colours
    rgba = np.asarray(open_rgb(awkward_folder / "rgba.png"))
    assert (rgba[:, 30:] == 255).all()  # transparent half composited on white
    assert np.array_equal(rgba[:, :20], np.asarray(colourful(seed=6))[:, :20])
    palette = np.asarray(open_rgb(awkward_folder / "palette.png"))
    with Image.open(awkward_folder / "palette.png") as original:
        assert original.mode == "P"
        assert np.array_equal(palette, np.asarray(original.convert("RGB")))  # the palette's colours
    rgb16 = np.asarray(open_rgb(awkward_folder / "rgb16.png"))
    assert np.abs(rgb16.astype(int) - np.asarray(colourful(seed=8))).max() <= 1


def test_sixteen_bit_gray_is_rescaled_not_clipped(tmp_path):
    values = np.array([[0, 16384, 32768, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "gray16.png")
    rgb = np.asarray(open_rgb(tmp_path / "gray16.png"))
    assert rgb[0, :, 0].tolist() == [0, 64, 128, 255]
    assert (rgb[..., 0] == rgb[..., 2]).all()


def test_exif_orientation_is_applied(awkward_folder):
    image = open_rgb(awkward_folder / "exif_rotated.jpg")
    assert image.size == (40, 48)  # stored 48×40, displayed rotated
    pixels = np.asarray(image, dtype=int)
    assert pixels[2, 20, 0] > 150 and pixels[2, 20, 2] < 100  # top is red
    assert pixels[-3, 20, 2] > 150 and pixels[-3, 20, 0] < 100  # bottom is blue
    tensor = load_uint8(awkward_folder / "exif_rotated.jpg", 32)
    assert tensor.shape == (3, 32, 32) and tensor.dtype == torch.uint8
    assert tensor[0, 2, 16] > 150 and tensor[2, -3, 16] > 150


def test_crop_keeps_aspect_and_squash_does_not(tmp_path):
    image = np.zeros((20, 60, 3), np.uint8)
    image[:, :20] = (255, 0, 0)  # a red strip on the left third
    Image.fromarray(image).save(tmp_path / "wide.png")
    squash = load_uint8(tmp_path / "wide.png", 30, "squash")
    crop = load_uint8(tmp_path / "wide.png", 30, "crop")
    assert squash[0, :, :5].float().mean() > 200  # the red strip is still there
    assert crop[0].float().mean() < 5  # the centre square has no red


# -- vetting, splitting, limiting ------------------------------------------------------------
def test_vetting_reports_bad_files_by_name_and_count(awkward_folder, caplog):
    files = sorted(p for p in awkward_folder.rglob("*") if p.suffix != ".txt" and p.is_file())
    with caplog.at_level(logging.WARNING):
        kept, report = vet_images(files, min_colorfulness=5.0, workers=2)
    assert sorted(p.name for p in kept) == sorted(GOOD)
    assert sorted(p.split("/")[-1] for p, _ in report.unreadable) == sorted(UNREADABLE)
    assert sorted(p.split("/")[-1] for p in report.black_or_white) == sorted(BLACK_WHITE)
    for name in UNREADABLE:
        assert name in caplog.text
    assert report.summary(len(kept)) == (
        "11 images used; left out: 3 unreadable, 2 entirely black or white, 0 nearly colourless"
    )


def test_colourless_photos_are_left_out_unless_disabled(tmp_path):
    colourful(seed=1).save(tmp_path / "colour.png")
    colourful(seed=1).convert("L").save(tmp_path / "gray.png")
    Image.new("RGB", (32, 32), (128, 128, 128)).save(tmp_path / "flat_gray.png")
    files = sorted(tmp_path.glob("*.png"))
    kept, report = vet_images(files, min_colorfulness=5.0, workers=1)
    assert [p.name for p in kept] == ["colour.png"]
    assert len(report.colourless) == 2
    kept, report = vet_images(files, min_colorfulness=0, workers=1)
    assert len(kept) == 3 and report.total == 0


def test_seeded_split_and_limit(tmp_path):
    for i in range(20):
        colourful(seed=i).save(tmp_path / f"{i:02d}.png")
    a = split_files(tmp_path, 0.2, 0.1, seed=0)
    assert {k: len(v) for k, v in a.items()} == {"train": 14, "val": 4, "test": 2}
    assert a == split_files(tmp_path, 0.2, 0.1, seed=0)
    assert a != split_files(tmp_path, 0.2, 0.1, seed=1)
    assert not set(a["train"]) & set(a["val"]) and not set(a["val"]) & set(a["test"])
    limited = limit_files(a, 10, seed=0)
    assert sum(len(v) for v in limited.values()) <= 10
    assert all(len(v) >= 1 for v in limited.values())
    assert set(limited["train"]) <= set(a["train"])


def test_subfolder_splits_win(tmp_path):
    for split in ("train", "val"):
        (tmp_path / split / "class_a").mkdir(parents=True)
        for i in range(3):
            colourful(seed=i).save(tmp_path / split / "class_a" / f"{i}.jpg")
    splits = split_files(tmp_path, 0.5, 0.5, seed=0)
    assert len(splits["train"]) == 3 and len(splits["val"]) == 3
    assert splits["test"] == splits["val"]  # no test/ folder: test on val/


# -- the data module -------------------------------------------------------------------------
def test_folder_datamodule_batches_on_device_in_lab(awkward_folder):
    dm = FolderDataModule(
        root=str(awkward_folder),
        image_size=32,
        batch_size=4,
        num_workers=0,
        val_fraction=0.2,
        test_fraction=0.2,
    )
    dm.setup()
    assert dm.skipped.total == 5
    used = {p.name for ds in dm.datasets.values() for p in ds.files}
    assert used == set(GOOD)
    raw = next(iter(dm.train_dataloader()))
    assert raw.dtype == torch.uint8 and raw.shape[1:] == (3, 32, 32)
    batch = prepare_batch(raw)
    assert batch["L"].shape == (len(raw), 1, 32, 32) and batch["ab"].shape == (len(raw), 2, 32, 32)
    assert batch["L"].min() >= 0 and batch["L"].max() <= 100.001
    assert batch["ab"].abs().max() < 1 and batch["rgb"].min() >= 0 and batch["rgb"].max() <= 1


def test_flip_augmentation_flips_some_images():
    torch.manual_seed(0)
    raw = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    augmentation = build_augmentation(8, flip=True)
    out = prepare_batch(raw, augmentation)["rgb"]
    flipped = [torch.allclose(o, r.flip(-1).float() / 255) for o, r in zip(out, raw)]
    kept = [torch.allclose(o, r.float() / 255) for o, r in zip(out, raw)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 10 < sum(flipped) < 54


def test_random_resized_crops_zoom_in_and_are_validated():
    torch.manual_seed(0)
    # Left half black, right half white: a crop of at most half the area shows more of one.
    raw = torch.zeros(32, 3, 16, 16, dtype=torch.uint8)
    raw[..., 8:] = 255
    augmentation = build_augmentation(16, flip=False, crop_scale=[0.2, 0.5])
    out = prepare_batch(raw, augmentation)["rgb"]
    assert out.shape == (32, 3, 16, 16)
    assert (out.mean(dim=(1, 2, 3)) - 0.5).abs().max() > 0.15
    assert build_augmentation(16, flip=False, crop_scale=None) is None
    for wrong in ([0.5], [0.0, 1.0], [0.9, 0.5], "big"):
        with pytest.raises(ColorlabError, match=r"crop_scale=.* is not allowed; use \[low, high\]"):
            build_augmentation(16, crop_scale=wrong)


def test_training_batches_are_augmented_and_evaluation_batches_are_not():
    dm = SyntheticDataModule(num_images=12, image_size=16, crop_scale=[0.3, 0.3], cache="cpu")
    raw = next(iter(dm.split_dataloader("val")))
    plain = prepare_batch(raw)["rgb"]
    assert torch.equal(dm.on_after_batch_transfer(raw, 0)["rgb"], plain)  # no trainer: evaluation
    dm.trainer = SimpleNamespace(training=True, strategy=SimpleNamespace(root_device="cpu"))
    assert not torch.equal(dm.on_after_batch_transfer(raw, 0)["rgb"], plain)


# -- which images each epoch visits: cache or workers, one process or several ranks -----------
def _epochs(loader, epochs=2):
    seen = []
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        seen.append([batch.clone() for batch in loader])
    return seen


@pytest.mark.parametrize("cache", ["cpu", "none"])
def test_cached_and_streamed_batches_are_the_same_images_in_the_same_order(cache):
    def batches(mode):
        dm = SyntheticDataModule(num_images=30, image_size=16, batch_size=4, num_workers=0, seed=3)
        return _epochs(dm.split_dataloader("train", shuffle=True, cache=mode))

    reference, other = batches("cpu"), batches(cache)
    for epoch_a, epoch_b in zip(reference, other):
        assert len(epoch_a) == len(epoch_b) == 24 // 4  # 24 training images, full batches
        assert all(torch.equal(a, b) for a, b in zip(epoch_a, epoch_b))
    first, second = (torch.cat(epoch) for epoch in reference)
    assert not torch.equal(first, second)  # a new order each epoch …
    assert torch.equal(*(e.flatten(1).unique(dim=0) for e in (first, second)))  # … same images
    all_scenes = SyntheticScenes(24, 16, seed=3).render(range(24))
    assert torch.equal(first.flatten(1).unique(dim=0), all_scenes.flatten(1).unique(dim=0))


def test_the_seed_fixes_the_first_batch():
    def first_batch(seed):
        dm = SyntheticDataModule(num_images=30, image_size=8, batch_size=4, seed=seed, cache="cpu")
        return next(iter(dm.train_dataloader()))

    assert torch.equal(first_batch(1), first_batch(1))
    assert not torch.equal(first_batch(1), first_batch(2))


def test_ranks_own_disjoint_shards_that_cover_the_split():
    for length, world_size in ((10, 2), (11, 2), (11, 4), (3, 4)):
        train = [
            EpochOrder(length, True, seed=0, rank=r, world_size=world_size)
            for r in range(world_size)
        ]
        for order in train:
            order.set_epoch(5)
        visits = [list(order) for order in train]
        assert len({len(v) for v in visits}) == 1  # every rank runs as many steps
        assert set().union(*visits) == set(range(length))
        assert sum(map(len, visits)) - length < world_size  # padding only to even them out
        evaluation = [
            list(EpochOrder(length, False, rank=r, world_size=world_size))
            for r in range(world_size)
        ]
        assert sorted(sum(evaluation, [])) == list(range(length))  # each image once
    one = EpochOrder(10, True, seed=0)
    assert sorted(one) == list(range(10)) and list(one) == list(one)
    one.set_epoch(1)
    assert sorted(one) == list(range(10)) and list(one) != list(EpochOrder(10, True, seed=0))


def test_a_rank_caches_only_its_shard():
    dm = SyntheticDataModule(num_images=40, image_size=8, batch_size=4, cache="cpu")
    dm.trainer = SimpleNamespace(
        global_rank=1,
        world_size=2,
        training=False,
        strategy=SimpleNamespace(root_device=torch.device("cpu")),
    )
    loader = dm.split_dataloader("train", shuffle=True)
    assert len(loader.images) == 16  # 32 training images, half of them
    seen = torch.cat(list(loader))
    odd = dm.datasets["train"].render(range(1, 32, 2))
    assert torch.equal(seen.flatten(1).unique(dim=0), odd.flatten(1).unique(dim=0))


def test_a_padded_shard_is_served_from_the_cache():
    # 11 images on 4 ranks: padding gives ranks 3 images each, some owned by another rank.
    for rank in range(4):
        order = EpochOrder(11, True, rank=rank, world_size=4)
        images = torch.arange(11, dtype=torch.uint8)[order.owned()].view(-1, 1, 1, 1)
        loader = CachedBatches(images.expand(-1, 3, 1, 1).contiguous(), order, 2, False)
        seen = torch.cat(list(loader))[:, 0, 0, 0].tolist()
        assert sorted(seen) == sorted(order.shard().tolist()) and len(seen) == 3


def test_auto_cache_picks_gpu_then_ram_then_streaming(monkeypatch):
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    monkeypatch.setattr(cache, "free_device_memory", lambda device: 10_000)
    monkeypatch.setattr(cache, "available_ram", lambda: 100_000)
    assert choose_cache("auto", 4_000, cuda) == "gpu"
    assert choose_cache("auto", 6_000, cuda) == "cpu"  # over 40 % of the GPU's free memory
    assert choose_cache("auto", 6_000, cpu) == "cpu"
    assert choose_cache("auto", 60_000, cuda) == "none"  # over half the free RAM
    assert choose_cache("none", 1, cuda) == "none" and choose_cache("cpu", 10**12, cuda) == "cpu"
    with pytest.raises(
        ColorlabError,
        match="cache='gpu' is not allowed; it needs a CUDA device, this run trains on cpu",
    ):
        choose_cache("gpu", 1, cpu)
    with pytest.raises(ColorlabError, match="^cache='disk' is not allowed"):
        choose_cache("disk", 1, cpu)


def test_a_small_memory_streams_the_data(monkeypatch):
    monkeypatch.setattr(cache, "available_ram", lambda: 1000)
    dm = SyntheticDataModule(num_images=30, image_size=16, batch_size=4, num_workers=0)
    assert dm.cache_mode() == "none"
    assert isinstance(dm.train_dataloader(), DataLoader)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"root": "/definitely/missing"}, "root='/definitely/missing' is not a folder"),
        ({"root": None}, "root=None is not set"),
        (
            {"root": ".", "resize": "stretch"},
            "resize='stretch' is not allowed; choose one of: squash, crop",
        ),
        (
            {"root": ".", "val_fraction": 0.6, "test_fraction": 0.5},
            "test_fraction=0.5 is not allowed; val_fraction + test_fraction must be below 1",
        ),
        ({"root": ".", "limit": 0}, "limit=0 is not allowed"),
    ],
)
def test_folder_config_errors_name_the_parameter(kwargs, message):
    with pytest.raises(ColorlabError, match="^" + re.escape(message)):
        FolderDataModule(**kwargs)
    # built from a config, the same error names the key
    config = {"_target_": "colorlab.data.FolderDataModule", "image_size": 32, **kwargs}
    with pytest.raises(ColorlabError, match="^data\\." + re.escape(message)):
        build(config, "data")


def test_folder_without_images_is_an_error(tmp_path):
    (tmp_path / "readme.txt").write_text("no photos here")
    dm = FolderDataModule(root=str(tmp_path), image_size=32)
    with pytest.raises(ColorlabError, match="holds no image files"):
        dm.setup()


def test_a_folder_of_colourless_photos_names_the_threshold_key(tmp_path):
    for i in range(4):
        colourful(seed=i).convert("L").convert("RGB").save(tmp_path / f"gray{i}.png")
    dm = FolderDataModule(root=str(tmp_path), image_size=32, num_workers=0)
    with pytest.raises(ColorlabError) as error:
        dm.setup()
    assert str(error.value).startswith("data.min_colorfulness=5.0 leaves no training image in ")
    assert "lower it (0 keeps every photo)" in str(error.value)


def test_a_folder_of_corrupt_files_has_no_usable_image(tmp_path):
    for i in range(3):
        (tmp_path / f"broken{i}.jpg").write_bytes(b"not a picture")
    dm = FolderDataModule(root=str(tmp_path), image_size=32, num_workers=0)
    with pytest.raises(ColorlabError) as error:
        dm.setup()  # evaluate reads folders too: no word of "training" images
    assert str(error.value).startswith(f"{tmp_path} has no usable image (0 images used")


def test_an_empty_val_folder_beside_train_points_at_that_folder(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    for i in range(3):
        colourful(seed=i).save(tmp_path / "train" / f"{i}.png")
    dm = FolderDataModule(root=str(tmp_path), image_size=32, num_workers=0)
    dm.setup()
    with pytest.raises(ColorlabError) as error:
        dm.split_dataloader("val")
    message = str(error.value)
    assert message == (
        f"the val split has no images; add photos to {tmp_path / 'val'} "
        "(with a train/ folder, the splits are its folders)"
    )


@pytest.mark.skipif(not SCENES.is_dir(), reason="real photos not present (../shared/data/scenes)")
def test_real_scenes_folder_uses_its_train_and_val(tmp_path):
    dm = FolderDataModule(root=str(SCENES), image_size=32, limit=60, num_workers=0)
    dm.setup()
    train_files = dm.datasets["train"].files
    assert all("/train/" in str(p) for p in train_files)
    assert all("/val/" in str(p) for p in dm.datasets["val"].files)
    assert 45 <= len(train_files) + len(dm.datasets["val"].files) + dm.skipped.total <= 60
