"""Picture files (lenet_fast.data.images): PNG/PGM decoding against an independent encoder, errors, MNIST style."""
import gzip
import struct
import zlib

import numpy as np
import pytest

from lenet_fast.data.images import load_digits, mnist_style, read_image, write_png

ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
LUMA = np.array([0.299, 0.587, 0.114])


def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def filter_row(kind, row, prior, bpp):
    """One PNG scanline filtered with `kind`, byte by byte as the PNG specification writes it."""
    out = bytearray([kind])
    for i, value in enumerate(row):
        a, b = (row[i - bpp] if i >= bpp else 0), prior[i]
        c = prior[i - bpp] if i >= bpp else 0
        p = a + b - c
        paeth = a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else b if abs(p - b) <= abs(p - c) else c
        out.append((value - (0, a, b, (a + b) // 2, paeth)[kind]) % 256)
    return bytes(out)


def pack_row(row, depth):
    if depth == 16:
        return row.astype(">u2").tobytes()
    if depth == 8:
        return row.astype(np.uint8).tobytes()
    bits = (row[:, None] >> np.arange(depth - 1, -1, -1)) & 1
    return np.packbits(bits.ravel().astype(np.uint8)).tobytes()


def make_png(samples, colour, depth, interlace=False, filters=(0, 1, 2, 3, 4), extra=(), width=None, idat=None):
    """PNG bytes of integer samples (h, w, channels); row filters cycle through `filters`."""
    height, w, channels = samples.shape
    bpp = max(1, channels * depth // 8)
    raw, k = b"", 0
    for x0, y0, dx, dy in ADAM7 if interlace else ((0, 0, 1, 1),):
        sub = samples[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        prior = bytes(len(pack_row(sub[0].ravel(), depth)))
        for row in sub.reshape(len(sub), -1):
            packed = pack_row(row, depth)
            raw += filter_row(filters[k % len(filters)], packed, prior, bpp)
            prior, k = packed, k + 1
    ihdr = struct.pack(">IIBBBBB", w if width is None else width, height, depth, colour, 0, 0, int(interlace))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + b"".join(chunk(*c) for c in extra)
            + chunk(b"IDAT", zlib.compress(raw) if idat is None else idat) + chunk(b"IEND", b""))


def grey_of(samples, colour, depth):
    """Expected 0..255 grey of non-palette samples: BT.601 luma, alpha over white."""
    values = samples / (2 ** depth - 1)
    grey = values[..., :3] @ LUMA if colour in (2, 6) else values[..., 0]
    if colour in (4, 6):
        grey = grey * values[..., -1] + 1 - values[..., -1]
    return np.rint(grey * 255)


def decode(tmp_path, data, name="image.bin"):
    path = tmp_path / name
    path.write_bytes(data)
    return read_image(path)


def test_write_png_round_trip(tmp_path, rng):
    image = rng.integers(0, 256, (13, 29), dtype=np.uint8)
    write_png(tmp_path / "a.png", image)
    assert (tmp_path / "a.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temporary file left behind
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and np.array_equal(out, image)
    with pytest.raises(ValueError, match="2-D uint8"):
        write_png(tmp_path / "b.png", image.astype(np.float32))


COLOUR_DEPTHS = [(0, 1), (0, 2), (0, 4), (0, 8), (0, 16), (2, 8), (2, 16), (4, 8), (4, 16), (6, 8), (6, 16)]


@pytest.mark.parametrize("interlace", [False, True])
@pytest.mark.parametrize("colour,depth", COLOUR_DEPTHS)
def test_png_colour_types_and_depths(tmp_path, rng, colour, depth, interlace):
    samples = rng.integers(0, 2 ** depth, (11, 13, CHANNELS[colour]))
    out = decode(tmp_path, make_png(samples, colour, depth, interlace))
    assert out.dtype == np.uint8 and out.shape == (11, 13)
    np.testing.assert_allclose(out, grey_of(samples, colour, depth), atol=0 if colour == 0 else 1)


@pytest.mark.parametrize("interlace", [False, True])
@pytest.mark.parametrize("depth", [1, 2, 4, 8])
def test_png_palette_with_transparency(tmp_path, rng, depth, interlace):
    n = min(2 ** depth, 200)
    palette = rng.integers(0, 256, (n, 3))
    alphas = rng.integers(0, 256, n // 2 + 1)  # tRNS may cover only the first entries
    index = rng.integers(0, n, (9, 10, 1))
    extra = [(b"PLTE", palette.astype(np.uint8).tobytes()), (b"tRNS", alphas.astype(np.uint8).tobytes())]
    out = decode(tmp_path, make_png(index, 3, depth, interlace, extra=extra))
    alpha = np.append(alphas, np.full(n - len(alphas), 255))[index[..., 0]] / 255
    expected = np.rint(((palette[index[..., 0]] @ LUMA) / 255 * alpha + 1 - alpha) * 255)
    np.testing.assert_allclose(out, expected, atol=1)


@pytest.mark.parametrize("colour,depth", [(0, 8), (2, 8), (6, 16), (0, 2)])
@pytest.mark.parametrize("kind", range(5))
def test_png_each_filter_type(tmp_path, rng, colour, depth, kind):
    samples = rng.integers(0, 2 ** depth, (7, 9, CHANNELS[colour]))
    out = decode(tmp_path, make_png(samples, colour, depth, filters=(kind,)))
    np.testing.assert_allclose(out, grey_of(samples, colour, depth), atol=0 if colour == 0 else 1)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (5, 1)])
def test_png_interlaced_tiny_images_with_empty_passes(tmp_path, rng, shape):
    samples = rng.integers(0, 256, shape + (1,))
    assert np.array_equal(decode(tmp_path, make_png(samples, 0, 8, interlace=True)), samples[..., 0])


def test_png_transparent_colour_key(tmp_path):
    grey = np.array([[[0], [7], [0]]])
    rgb = np.array([[[1, 2, 3], [0, 0, 0]]])
    out = decode(tmp_path, make_png(grey, 0, 8, extra=[(b"tRNS", b"\x00\x07")]))
    assert out.tolist() == [[0, 255, 0]]
    out = decode(tmp_path, make_png(rgb, 2, 8, extra=[(b"tRNS", struct.pack(">HHH", 1, 2, 3))]))
    assert out.tolist() == [[255, 0]]


def test_pgm_ascii_and_binary(tmp_path):
    p2 = b"P2\n# written by hand\n3 2\n# maxval next\n255\n0 128 255\n7 # inline comment\n8 9\n"
    assert decode(tmp_path, p2, "a.pgm").tolist() == [[0, 128, 255], [7, 8, 9]]
    p5 = b"P5 # comment\n2 2 255\n" + bytes([0, 10, 200, 255])
    assert decode(tmp_path, p5, "b.pgm").tolist() == [[0, 10], [200, 255]]
    p5_16 = b"P5\n2 1\n65535\n" + struct.pack(">HH", 65535, 257 * 40)
    assert decode(tmp_path, p5_16, "c.pgm").tolist() == [[255, 40]]
    p2_16 = b"P2 2 1 65535 0 32768"
    assert decode(tmp_path, p2_16, "d.pgm").tolist() == [[0, 128]]
    p2_15 = b"P2 2 1 15 15 5"
    assert decode(tmp_path, p2_15, "not-a-png.png").tolist() == [[255, 85]]  # magic bytes, not extension


GOOD_PNG = make_png(np.arange(12).reshape(3, 4, 1), 0, 8)
BAD_CRC = bytearray(GOOD_PNG)
BAD_CRC[GOOD_PNG.index(b"IDAT") + 6] ^= 0xFF


@pytest.mark.parametrize("data,message", [
    (b"hello, not an image", "unsupported image format .*PNG.*PGM"),
    (b"", "empty file"),
    (GOOD_PNG[:len(GOOD_PNG) // 2], "truncated"),
    (GOOD_PNG[:-12], "truncated PNG .no IEND"),
    (bytes(BAD_CRC), "bad CRC in IDAT"),
    (make_png(np.zeros((2, 2, 1), int), 0, 8, idat=b"not zlib data"), "zlib"),
    (make_png(np.zeros((2, 2, 1), int), 0, 8, idat=zlib.compress(b"\0\0\0")), "truncated PNG image data"),
    (make_png(np.zeros((2, 2, 1), int), 0, 8, width=0), "zero-size"),
    (make_png(np.zeros((2, 2, 1), int), 0, 8, width=10 ** 9), "too large"),
    (make_png(np.zeros((2, 2, 1), int), 2, 4), "invalid colour type 2 with bit depth 4"),
    (make_png(np.zeros((2, 2, 1), int), 3, 8), "PLTE"),
    (b"P5\n4 4\n255\n" + bytes(10), "truncated PGM"),
    (b"P2\n2 0\n255\n", "zero-size"),
    (b"P2\n2 1\n255\n3 300\n", "exceeds maxval"),
])
def test_corrupt_files_raise_value_error_naming_the_file(tmp_path, data, message):
    path = tmp_path / "photo.png"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=message) as info:
        read_image(path)
    assert str(path) in str(info.value)


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


def test_load_digits(tmp_path):
    paths = [tmp_path / "seven.png", tmp_path / "seven.pgm"]
    write_png(paths[0], seven().astype(np.uint8))
    paths[1].write_bytes(b"P5 60 100 255\n" + (255 - seven()).astype(np.uint8).tobytes())
    digits = load_digits(paths)
    assert digits.shape == (2, 28, 28) and digits.dtype == np.uint8
    assert np.abs(digits[0].astype(int) - digits[1]).mean() < 1
    write_png(tmp_path / "blank.png", np.full((10, 10), 255, np.uint8))
    with pytest.raises(ValueError, match="blank.png: no digit found"):
        load_digits(paths + [tmp_path / "blank.png"])
    assert load_digits([]).shape == (0, 28, 28)
