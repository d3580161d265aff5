"""Picture files (lenet_fast.data.images): files of each format written by Pillow, their errors, MNIST style."""
import gzip

import numpy as np
import pytest
from PIL import Image

from lenet_fast.data import images, load_sample
from lenet_fast.data.images import load_digits, mnist_style, read_image, write_png

LUMA = np.array([0.299, 0.587, 0.114])
LOSSLESS = [("png", {}), ("bmp", {}), ("tiff", {}), ("webp", {"lossless": True}), ("pgm", {}), ("gif", {})]
LOSSY = [("jpeg", {"quality": 95}), ("webp", {"quality": 95})]


def smooth(height=24, width=32):
    """A smooth colour picture (lossy formats keep it to a few grey levels)."""
    r, c = np.mgrid[:height, :width]
    return np.stack([r * 255 // (height - 1), c * 255 // (width - 1), (r + c) * 255 // (height + width - 2)],
                    axis=-1).astype(np.uint8)


def save(path, array, **options):
    Image.fromarray(array).save(path, **options)
    return path


def test_write_png_round_trip(tmp_path, rng):
    image = rng.integers(0, 256, (13, 29), dtype=np.uint8)
    write_png(tmp_path / "a.png", image)
    assert (tmp_path / "a.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temporary file left behind
    with Image.open(tmp_path / "a.png") as picture:
        assert picture.format == "PNG" and picture.mode == "L"
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and np.array_equal(out, image)
    with pytest.raises(ValueError, match="2-D uint8"):
        write_png(tmp_path / "b.png", image.astype(np.float32))


@pytest.mark.parametrize("fmt,options", LOSSLESS)
def test_lossless_formats_grey(tmp_path, rng, fmt, options):
    grey = rng.integers(0, 256, (11, 13), dtype=np.uint8)
    out = read_image(save(tmp_path / f"a.{fmt}", grey, **options))
    assert out.dtype == np.uint8 and np.array_equal(out, grey)


@pytest.mark.parametrize("fmt,options", [f for f in LOSSLESS if f[0] not in ("pgm", "gif")] + LOSSY)
def test_colour_becomes_bt601_grey(tmp_path, fmt, options):
    rgb = smooth()
    out = read_image(save(tmp_path / f"a.{fmt}", rgb, **options))
    assert out.shape == rgb.shape[:2] and out.dtype == np.uint8
    error = np.abs(out - rgb @ LUMA)
    assert error.max() <= (1 if (fmt, options) in LOSSLESS else 12) and error.mean() < 3


@pytest.mark.parametrize("fmt,options", [("png", {}), ("webp", {"lossless": True}), ("tiff", {})])
def test_alpha_is_composited_over_white(tmp_path, rng, fmt, options):
    rgba = np.dstack([smooth(), rng.integers(0, 256, (24, 32), dtype=np.uint8)])
    out = read_image(save(tmp_path / f"a.{fmt}", rgba, **options))
    alpha = rgba[..., 3] / 255
    np.testing.assert_allclose(out, (rgba[..., :3] @ LUMA) * alpha + 255 * (1 - alpha), atol=2)
    grey_alpha = Image.fromarray(rgba).convert("LA")                     # grey with alpha (PNG colour type 4)
    grey_alpha.save(tmp_path / "la.png")
    grey, alpha = np.asarray(grey_alpha).transpose(2, 0, 1) / [[[1]], [[255]]]
    np.testing.assert_allclose(read_image(tmp_path / "la.png"), grey * alpha + 255 * (1 - alpha), atol=1)


def test_palette_with_transparency(tmp_path, rng):
    palette = rng.integers(0, 256, (16, 3))
    index = rng.integers(0, 16, (9, 10)).astype(np.uint8)
    picture = Image.fromarray(index)
    picture.putpalette(palette.astype(np.uint8).ravel().tolist())      # makes it a palette ("P") image
    alphas = rng.integers(0, 256, 9)                                    # tRNS covers only the first entries
    picture.save(tmp_path / "p.png", transparency=bytes(alphas.astype(np.uint8)))
    alpha = np.append(alphas, np.full(16 - len(alphas), 255))[index] / 255
    expected = (palette[index] @ LUMA) * alpha + 255 * (1 - alpha)
    np.testing.assert_allclose(read_image(tmp_path / "p.png"), expected, atol=2)
    picture.save(tmp_path / "p.gif")                                    # a palette without transparency
    np.testing.assert_allclose(read_image(tmp_path / "p.gif"), palette[index] @ LUMA, atol=1)


def test_sixteen_bit_grey_is_rescaled(tmp_path, rng):
    values = rng.integers(0, 65536, (7, 9)).astype(np.uint16)
    for name in ("g16.png", "g16.tiff", "g16.pgm"):
        out = read_image(save(tmp_path / name, values))
        np.testing.assert_allclose(out, values / 257, atol=0.5 + 1e-9, err_msg=name)
    values[0, 0] = 1234                                                 # a grey level marked transparent
    save(tmp_path / "key16.png", values, transparency=1234)
    out = read_image(tmp_path / "key16.png")
    assert out[0, 0] == 255 and np.abs(out[1:] - values[1:] / 257).max() <= 0.5 + 1e-9


def test_transparent_colour_key(tmp_path):
    save(tmp_path / "grey.png", np.array([[0, 7, 0]], np.uint8), transparency=7)
    assert read_image(tmp_path / "grey.png").tolist() == [[0, 255, 0]]
    save(tmp_path / "rgb.png", np.array([[[1, 2, 3], [0, 0, 0]]], np.uint8), transparency=(1, 2, 3))
    assert read_image(tmp_path / "rgb.png").tolist() == [[255, 0]]


def test_one_bit_and_exif_orientation(tmp_path):
    ink = np.zeros((6, 4), bool)
    ink[0] = True
    Image.fromarray(ink).save(tmp_path / "bits.png")
    assert read_image(tmp_path / "bits.png").tolist() == np.where(ink, 255, 0).tolist()
    picture = Image.fromarray(np.where(ink, 255, 0).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6                                                    # "rotate 90 degrees clockwise to view"
    picture.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    out = read_image(tmp_path / "phone.jpg")
    assert out.shape == (4, 6) and out[:, -1].min() > 200 and out[:, :-2].max() < 50


def test_pgm_ascii_and_binary(tmp_path):
    def decode(data, name):
        (tmp_path / name).write_bytes(data)
        return read_image(tmp_path / name).tolist()
    p2 = b"P2\n# written by hand\n3 2\n# maxval next\n255\n0 128 255\n7 8 9\n"
    assert decode(p2, "a.pgm") == [[0, 128, 255], [7, 8, 9]]
    assert decode(b"P5 # comment\n2 2 255\n" + bytes([0, 10, 200, 255]), "b.pgm") == [[0, 10], [200, 255]]
    assert decode(b"P5\n2 1\n65535\n" + (65535).to_bytes(2, "big") + (257 * 40).to_bytes(2, "big"),
                  "c.pgm") == [[255, 40]]
    assert decode(b"P2 2 1 65535 0 32768", "d.pgm") == [[0, 128]]
    assert decode(b"P2 2 1 15 15 5", "not-a-png.png") == [[255, 85]]  # the content decides, not the name


def good(fmt, tmp_path):
    """The bytes of a valid 60x40 colour picture in `fmt`."""
    return save(tmp_path / f"good.{fmt}", smooth(40, 60), quality=90).read_bytes()


@pytest.mark.parametrize("make,message", [
    (lambda t: b"hello, not an image", "not a picture Pillow can identify .*JPEG, PNG, BMP, TIFF, WebP, PGM"),
    (lambda t: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "not a picture Pillow can identify"),
    (lambda t: b"", "empty file"),
    (lambda t: good("png", t)[:len(good("png", t)) // 2], "truncated"),
    (lambda t: good("jpeg", t)[:len(good("jpeg", t)) // 2], "truncated|Truncated"),
    (lambda t: good("bmp", t)[:200], "truncated|Truncated"),
    (lambda t: good("webp", t)[:60], "corrupt or truncated"),
    (lambda t: good("tiff", t)[:300], "truncated"),
    (lambda t: b"P5\n4 4\n255\n" + bytes(10), "truncated"),
    (lambda t: b"P2\n2 0\n255\n", "not a picture Pillow can identify .unknown format or damaged header"),
])
def test_corrupt_files_raise_one_line_naming_the_file(tmp_path, make, message):
    path = tmp_path / "photo.png"
    path.write_bytes(make(tmp_path))
    with pytest.raises(ValueError, match=message) as info:
        read_image(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_decompression_bombs_are_refused(tmp_path, monkeypatch):
    path = save(tmp_path / "big.png", np.zeros((30, 40), np.uint8))
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    with pytest.raises(ValueError, match=r"big.png: image too large \(40x30 = 1,200 pixels; .* is 1,000: raise "
                                         r"lenet_fast.data.images.MAX_PIXELS"):
        read_image(path)
    monkeypatch.setattr(images, "MAX_PIXELS", 10 ** 6)
    assert read_image(path).shape == (30, 40)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)                 # Pillow's own limit, above 2x of it
    with pytest.raises(ValueError, match="big.png: image too large .*PIL.Image.MAX_IMAGE_PIXELS") as info:
        read_image(path)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.png"):
        read_image(tmp_path / "nothing.png")


def seven(height=100, width=60):
    """A thick dark "7" on a white canvas: a bar on top and a slanted stroke down from its right end."""
    image = np.full((height, width), 250.0)
    image[10:22, 8:52] = 20.0
    for row in range(22, 92):
        centre = int(44 - 0.35 * (row - 22))
        image[row, centre - 6:centre + 6] = 20.0
    return image


def check_mnist_frame(digit):
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    assert digit.max() == 255 and digit[0].max() == digit[-1].max() == 0
    rows, cols = np.nonzero(digit)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 in (19, 20, 21)
    mass = digit.astype(float)
    centre = (np.arange(28) @ mass.sum(1), np.arange(28) @ mass.sum(0)) / mass.sum()
    np.testing.assert_allclose(centre, (14, 14), atol=1)


def test_mnist_style_dark_on_light_and_inverted():
    digit = mnist_style(seven())
    check_mnist_frame(digit)
    rows = np.nonzero(digit.any(axis=1))[0]
    assert np.count_nonzero(digit[rows[0]]) > 2 * np.count_nonzero(digit[rows[-1]])  # the bar is on top
    inverted = mnist_style(255 - seven())
    assert np.abs(inverted.astype(int) - digit).mean() < 1


def test_mnist_style_ignores_background_noise(rng):
    noisy = np.clip(seven() + rng.normal(0, 8, (100, 60)), 0, 255).astype(np.uint8)
    check_mnist_frame(mnist_style(noisy))


def test_mnist_style_min_noise_ignores_faint_ringing():
    ringing = seven()
    ringing[2:8, 30:58] = 230                       # faint, as JPEG rings next to ink on a clean background
    assert not np.array_equal(mnist_style(ringing), mnist_style(seven()))
    assert np.array_equal(mnist_style(ringing, images.LOSSY_NOISE), mnist_style(seven(), images.LOSSY_NOISE))
    check_mnist_frame(mnist_style(ringing, images.LOSSY_NOISE))


@pytest.mark.parametrize("image", [np.full((40, 30), 200), np.random.default_rng(0).normal(200, 5, (40, 30))])
def test_mnist_style_blank_image(image):
    with pytest.raises(ValueError, match="no digit found"):
        mnist_style(image)


def test_mnist_style_recovers_mnist_digits(shared_dir):
    folder = shared_dir / "data" / "mnist-5k"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    with gzip.open(folder / "train-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:8]
    for image in images:
        photo = 255 - np.kron(image, np.ones((3, 3), np.uint8))  # 84x84, dark ink on white
        assert np.corrcoef(mnist_style(photo).ravel(), image.ravel())[0, 1] > 0.9
        assert np.array_equal(mnist_style(image), image)  # already MNIST-style: unchanged


@pytest.mark.parametrize("fmt,options", [("jpeg", {"quality": 90}), ("png", {}), ("bmp", {}), ("tiff", {}),
                                         ("webp", {}), ("pgm", {})])
def test_sample_digits_in_every_format(tmp_path, fmt, options):
    data = load_sample()
    paths = []
    for i in range(0, 5000, 625):                                       # 8 digits, dark on white, 84x84
        photo = np.repeat(255 - np.kron(data.x_train[i], np.ones((3, 3), np.uint8))[..., None], 3, axis=2)
        picture = Image.fromarray(photo if fmt != "pgm" else photo[..., 0])
        picture.save(tmp_path / f"{i}.{fmt}", **options)
        paths.append(tmp_path / f"{i}.{fmt}")
    digits = load_digits(paths)
    for digit, original in zip(digits, data.x_train[::625]):
        assert np.corrcoef(digit.ravel(), original.ravel())[0, 1] > 0.95
        if fmt not in ("jpeg", "webp"):                                 # lossless: MNIST's pixels again
            assert np.array_equal(digit, original) or np.abs(digit.astype(int) - original).max() <= 1


def test_load_digits(tmp_path):
    paths = [tmp_path / "seven.png", tmp_path / "seven.pgm", tmp_path / "seven.jpg"]
    write_png(paths[0], seven().astype(np.uint8))
    paths[1].write_bytes(b"P5 60 100 255\n" + (255 - seven()).astype(np.uint8).tobytes())
    save(paths[2], np.repeat(seven().astype(np.uint8)[..., None], 3, axis=2), quality=90)
    digits = load_digits(paths)
    assert digits.shape == (3, 28, 28) and digits.dtype == np.uint8
    assert np.abs(digits[0].astype(int) - digits[1]).mean() < 1
    assert np.abs(digits[0].astype(int) - digits[2]).mean() < 4
    write_png(tmp_path / "blank.png", np.full((10, 10), 255, np.uint8))
    with pytest.raises(ValueError, match="blank.png: no digit found"):
        load_digits(paths + [tmp_path / "blank.png"])
    (tmp_path / "notes.txt").write_text("not a picture")
    with pytest.raises(ValueError, match="notes.txt: not a picture"):
        load_digits([paths[0], tmp_path / "notes.txt"])
    assert load_digits([]).shape == (0, 28, 28)
