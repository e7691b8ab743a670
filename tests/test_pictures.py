"""Pictures people read: readable cells, titles wrapped at word boundaries, compact grids."""

from PIL import Image, ImageFont

from colorlab.pictures import _GAP, MIN_CELL, _font, _wrap, grid_groups, labelled_grid


def _rows(count, columns=3, size=32):
    return [
        [Image.new("RGB", (size, size), (8 * r, 90, 40 * c)) for c in range(columns)]
        for r in range(count)
    ]


def test_titles_wrap_at_word_boundaries():
    font = _font()
    width = int(font.getlength("grayscale")) + 2
    assert _wrap("grayscale input", font, width) == ["grayscale", "input"]
    assert _wrap("ground truth", font, width) == ["ground", "truth"]
    long_name = "baseline-classification@2026-11-27_12-00-00"
    lines = _wrap(long_name, font, 120)
    assert "".join(lines) == long_name and all(font.getlength(line) <= 120 for line in lines)
    assert _wrap("ground truth", ImageFont.load_default(), 400) == ["ground truth"]


def test_small_pictures_are_enlarged_to_readable_cells_pixel_for_pixel():
    tile = Image.new("RGB", (32, 32), (0, 0, 0))
    tile.putpixel((0, 0), (255, 0, 0))
    grid = labelled_grid([[tile, tile, tile]], ["gray", "prediction", "ground truth"], groups=1)
    assert grid.width == 3 * MIN_CELL + 2 * _GAP
    header = grid.height - MIN_CELL
    corner = grid.crop((0, header, MIN_CELL // 32, header + MIN_CELL // 32))  # one source pixel
    assert set(corner.getdata()) == {(255, 0, 0)}


def test_a_32_image_test_sample_is_a_grid_of_row_blocks_not_one_tall_column():
    assert grid_groups(32, 3) == 4 and grid_groups(8, 3) == 2 and grid_groups(3, 5) == 1
    grid = labelled_grid(_rows(32), ["gray", "prediction", "ground truth"])
    assert grid.height < 2300 and 1 / 2 < grid.width / grid.height < 2
    # the four blocks hold rows 0-7, 8-15, ...: the first cell of block 2 is row 8's gray
    header = grid.height - (8 * MIN_CELL + 7 * _GAP)
    block = 3 * MIN_CELL + 2 * _GAP
    x = block + (grid.width - 4 * block) // 3 + 5
    assert grid.getpixel((x, header + 5)) == (64, 90, 0)
