import logging

import numpy as np
import pytest
import torch
from PIL import Image

from colorlab.data import FolderDataModule, SyntheticDataModule, SyntheticScenes, render_scene
from colorlab.data.folder import limit_files, split_files, vet_images
from colorlab.data.images import UnreadableImageError, load_uint8, open_rgb
from colorlab.data.synthetic import render_scenes
from colorlab.errors import ColorlabError
from colorlab.metrics import colorfulness
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
    gray = lambda rgb: rgb @ np.array([0.299, 0.587, 0.114])  # noqa: E731
    assert abs(gray(top_day) - gray(top_dusk)) < 15  # about as light


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
    batch = dm.prepare_batch(raw, augment=False)
    assert batch["L"].shape == (len(raw), 1, 32, 32) and batch["ab"].shape == (len(raw), 2, 32, 32)
    assert batch["L"].min() >= 0 and batch["L"].max() <= 100.001
    assert batch["ab"].abs().max() < 1 and batch["rgb"].min() >= 0 and batch["rgb"].max() <= 1


def test_flip_augmentation_flips_some_images():
    torch.manual_seed(0)
    raw = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    out = SyntheticDataModule.prepare_batch(raw, augment=True)["rgb"]
    flipped = [torch.equal(o, r.flip(-1).float() / 255) for o, r in zip(out, raw)]
    kept = [torch.equal(o, r.float() / 255) for o, r in zip(out, raw)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 10 < sum(flipped) < 54


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"root": "/definitely/missing"}, "data.root=/definitely/missing is not a folder"),
        ({"root": None}, "data.root is not set"),
        ({"root": ".", "resize": "stretch"}, "choose one of: squash, crop"),
        ({"root": ".", "val_fraction": 0.6, "test_fraction": 0.5}, "must be below 1"),
        ({"root": ".", "limit": 0}, "data.limit=0"),
    ],
)
def test_folder_config_errors_name_the_key(kwargs, message):
    with pytest.raises(ColorlabError, match=message.replace("(", r"\(")):
        FolderDataModule(**kwargs)


def test_folder_without_images_is_an_error(tmp_path):
    (tmp_path / "readme.txt").write_text("no photos here")
    dm = FolderDataModule(root=str(tmp_path), image_size=32)
    with pytest.raises(ColorlabError, match="holds no image files"):
        dm.setup()


@pytest.mark.skipif(not SCENES.is_dir(), reason="real photos not present (../shared/data/scenes)")
def test_real_scenes_folder_uses_its_train_and_val(tmp_path):
    dm = FolderDataModule(root=str(SCENES), image_size=32, limit=60, num_workers=0)
    dm.setup()
    train_files = dm.datasets["train"].files
    assert all("/train/" in str(p) for p in train_files)
    assert all("/val/" in str(p) for p in dm.datasets["val"].files)
    assert 45 <= len(train_files) + len(dm.datasets["val"].files) + dm.skipped.total <= 60
