"""Picture files for `lenet-fast predict`: PNG and PGM readers, a PNG writer and MNIST-style digits.

`read_image` decodes PNG (every colour type and bit depth, all filter types, Adam7 interlacing) and
PGM (P2 and P5) with numpy, zlib and struct only; `mnist_style` turns a picture of one digit into a
28x28 image in MNIST's convention (0 = background, 255 = ink, size-normalised and centred by mass).
"""
import os
import re
import struct
import zlib

import numpy as np

from ..io.archive import atomic_write

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SUPPORTED = "PNG or PGM (P2/P5)"
MAX_PIXELS = 2 ** 26  # larger PNGs are refused: a small file can claim a huge image (decompression bomb)
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, as most image tools convert colour to grey

# PNG colour type -> (samples per pixel, allowed bit depths)
_PNG_COLOUR = {0: (1, (1, 2, 4, 8, 16)), 2: (3, (8, 16)), 3: (1, (1, 2, 4, 8)), 4: (2, (8, 16)), 6: (4, (8, 16))}
# Adam7 passes: (first column, first row, column step, row step)
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_PGM_FIELD = re.compile(rb"(?:\s|#[^\r\n]*)+([0-9]+)")
_PGM_COMMENT = re.compile(rb"#[^\r\n]*")

DIGIT_SIZE = 20       # MNIST: the digit's longer side, in pixels
FRAME_SIZE = 28       # MNIST: the frame the digit is centred in, by its centre of mass
MIN_CONTRAST = 32.0   # ink must stand out from the background noise by this many grey levels (of 255)
NOISE_SIGMAS = 6.0    # levels within this many noise deviations of the background are background


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png(path, image):
    """Atomically write a 2-D uint8 array as an 8-bit greyscale PNG (0 = black, 255 = white)."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 2 or 0 in image.shape:
        raise ValueError(f"image must be a non-empty 2-D uint8 array, got {image.dtype} {image.shape}")
    height, width = image.shape
    rows = np.hstack([np.zeros((height, 1), np.uint8), image])  # filter type 0 (none) on every row
    data = (PNG_SIGNATURE
            + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
            + _chunk(b"IEND", b""))
    atomic_write(path, lambda f: f.write(data))


def read_image(path):
    """A PNG or PGM file as a 2-D uint8 grey image (0 = black, 255 = white, as stored in the file).

    The format is detected from the file's first bytes. Colour becomes grey with the BT.601 luma
    weights; transparency is composited over white; 16-bit and low-bit-depth samples are rescaled
    to 0..255. Raises FileNotFoundError for a missing file and ValueError naming the file for an
    unsupported format or a truncated, corrupt or zero-size image.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        if not data:
            raise ValueError("empty file")
        if data.startswith(PNG_SIGNATURE):
            return _decode_png(data)
        if data[:2] in (b"P2", b"P5"):
            return _decode_pgm(data)
        raise ValueError(f"unsupported image format (supported: {SUPPORTED})")
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _to_uint8(grey):
    """Grey levels in [0, 1] to uint8 0..255."""
    return np.rint(np.clip(grey, 0.0, 1.0) * 255.0).astype(np.uint8)


def _decode_pgm(data):
    fields, pos = [], 2
    for name in ("width", "height", "maxval"):
        match = _PGM_FIELD.match(data, pos)
        if match is None:
            raise ValueError(f"corrupt PGM header (no valid {name})")
        fields.append(int(match.group(1)))
        pos = match.end()
    width, height, maxval = fields
    if width == 0 or height == 0:
        raise ValueError(f"zero-size image ({width}x{height})")
    if not 1 <= maxval <= 65535:
        raise ValueError(f"invalid PGM maxval {maxval} (must be 1..65535)")
    count = width * height
    if data[:2] == b"P5":
        itemsize = 1 if maxval < 256 else 2
        raster = data[pos + 1:pos + 1 + count * itemsize]  # one whitespace byte ends the header
        if len(raster) < count * itemsize:
            raise ValueError(f"truncated PGM data ({len(raster)} of {count * itemsize} bytes)")
        values = np.frombuffer(raster, ">u2" if itemsize == 2 else np.uint8)
    else:
        tokens = _PGM_COMMENT.sub(b" ", data[pos:]).split()
        if len(tokens) < count:
            raise ValueError(f"truncated PGM data ({len(tokens)} of {count} values)")
        if not all(token.isdigit() for token in tokens[:count]):
            raise ValueError("corrupt PGM data (non-numeric sample)")
        values = np.array([int(token) for token in tokens[:count]])
    if values.max() > maxval:
        raise ValueError(f"corrupt PGM data (sample {values.max()} exceeds maxval {maxval})")
    return _to_uint8(values.reshape(height, width) / maxval)


def _png_chunks(data):
    """(type, body) of every chunk before IEND, each checked against its CRC."""
    chunks, pos = [], len(PNG_SIGNATURE)
    while True:
        if pos + 12 > len(data):
            raise ValueError("truncated PNG (no IEND chunk)")
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        name = kind.decode("latin-1")
        if end > len(data):
            raise ValueError(f"truncated PNG ({name} chunk cut short)")
        if zlib.crc32(data[pos + 4:end - 4]) != struct.unpack_from(">I", data, end - 4)[0]:
            raise ValueError(f"corrupt PNG (bad CRC in {name} chunk)")
        if kind == b"IEND":
            return chunks
        chunks.append((kind, data[pos + 8:end - 4]))
        pos = end


def _unfilter(filtered, bpp):
    """Undo PNG filtering of rows (h, 1 + rowbytes) uint8 -> (h, rowbytes) uint8.

    The Average and Paeth predictors depend on the reconstructed left, upper and upper-left bytes,
    so pixels are reconstructed one anti-diagonal at a time, vectorised along the diagonal.
    """
    types = filtered[:, 0]
    if types.max() > 4:
        raise ValueError(f"corrupt PNG (invalid filter type {types.max()})")
    height = len(filtered)
    f = filtered[:, 1:].reshape(height, -1, bpp).astype(np.int16)
    width = f.shape[1]
    x = np.zeros((height + 1, width + 1, bpp), np.int16)  # a zero row above and column left
    for diagonal in range(height + width - 1):
        r = np.arange(max(0, diagonal - width + 1), min(height, diagonal + 1))
        c = diagonal - r
        left, up, upleft = x[r + 1, c], x[r, c + 1], x[r, c]
        p = left + up - upleft
        pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
        predictor = np.choose(types[r, None], [0, left, up, (left + up) >> 1, paeth])
        x[r + 1, c + 1] = (f[r, c] + predictor) & 255
    return x[1:, 1:].reshape(height, -1).astype(np.uint8)


def _unpack(rows, width, channels, depth):
    """Unfiltered bytes (h, rowbytes) -> integer samples (h, width, channels)."""
    if depth == 16:
        samples = rows[:, 0::2].astype(np.uint16) << 8 | rows[:, 1::2]
    elif depth == 8:
        samples = rows
    else:
        bits = np.unpackbits(rows, axis=1).reshape(len(rows), -1, depth)
        samples = bits @ (1 << np.arange(depth - 1, -1, -1))
    return samples[:, :width * channels].reshape(len(rows), width, channels)


def _decode_png(data):
    chunks = _png_chunks(data)
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        raise ValueError("corrupt PNG (no valid IHDR chunk)")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if colour not in _PNG_COLOUR or depth not in _PNG_COLOUR[colour][1]:
        raise ValueError(f"corrupt PNG (invalid colour type {colour} with bit depth {depth})")
    if compression != 0 or filtering != 0 or interlace > 1:
        raise ValueError("corrupt PNG (unknown compression, filter or interlace method)")
    if width == 0 or height == 0:
        raise ValueError(f"zero-size image ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise ValueError(f"image too large ({width}x{height}; at most {MAX_PIXELS} pixels)")
    channels = _PNG_COLOUR[colour][0]
    bpp = max(1, channels * depth // 8)

    passes = []  # (x0, y0, dx, dy, pass width, pass height, bytes per row) of each non-empty pass
    for x0, y0, dx, dy in _ADAM7 if interlace else ((0, 0, 1, 1),):
        w, h = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if w > 0 and h > 0:
            passes.append((x0, y0, dx, dy, w, h, (w * channels * depth + 7) // 8))
    expected = sum(h * (1 + rowbytes) for *_, h, rowbytes in passes)
    idat = b"".join(body for kind, body in chunks if kind == b"IDAT")
    try:
        raw = zlib.decompressobj().decompress(idat, expected)
    except zlib.error as exc:
        raise ValueError(f"corrupt PNG image data (zlib: {exc})") from None
    if len(raw) < expected:
        raise ValueError(f"truncated PNG image data ({len(raw)} of {expected} bytes)")

    samples = np.zeros((height, width, channels), np.uint16)
    pos = 0
    for x0, y0, dx, dy, w, h, rowbytes in passes:
        rows = np.frombuffer(raw, np.uint8, h * (1 + rowbytes), pos).reshape(h, 1 + rowbytes)
        samples[y0::dy, x0::dx] = _unpack(_unfilter(rows, bpp), w, channels, depth)
        pos += h * (1 + rowbytes)
    return _to_uint8(_png_grey(samples, colour, depth, dict(chunks[::-1])))


def _png_grey(samples, colour, depth, chunks):
    """Samples (h, w, channels) to grey levels in [0, 1], transparency composited over white."""
    trns = chunks.get(b"tRNS", b"")
    if colour == 3:
        palette = np.frombuffer(chunks.get(b"PLTE", b""), np.uint8)
        if len(palette) == 0 or len(palette) % 3:
            raise ValueError("corrupt PNG (palette image without a valid PLTE chunk)")
        palette = palette.reshape(-1, 3)
        alphas = np.full(len(palette), 255, np.uint8)
        alphas[:len(trns)] = np.frombuffer(trns[:len(palette)], np.uint8)
        index = samples[..., 0]
        if index.max() >= len(palette):
            raise ValueError(f"corrupt PNG (palette index {index.max()} beyond {len(palette)} entries)")
        grey, alpha = palette[index] @ LUMA / 255.0, alphas[index] / 255.0
    else:
        maxval = (1 << depth) - 1
        n_colour = 3 if colour in (2, 6) else 1
        values = samples[..., :n_colour]
        grey = values @ (LUMA if n_colour == 3 else np.ones(1)) / maxval
        if colour in (4, 6):
            alpha = samples[..., -1] / maxval
        elif len(trns) == 2 * n_colour:  # one colour marked fully transparent
            alpha = np.any(values != np.frombuffer(trns, ">u2"), axis=-1).astype(float)
        else:
            alpha = 1.0
    return grey * alpha + (1.0 - alpha)


def _area_weights(n_in, n_out):
    """(n_out, n_in) matrix resampling a line by area averaging (each output pixel's footprint)."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    pixels = np.arange(n_in)
    overlap = np.minimum(edges[1:, None], pixels + 1) - np.maximum(edges[:-1, None], pixels)
    return np.clip(overlap, 0.0, None) * (n_out / n_in)


def _border(image):
    return np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])


def mnist_style(image):
    """A picture of one digit (2-D grey levels 0..255, any size and polarity) as MNIST's (28, 28) uint8.

    As MNIST was made: the background (the median of the border pixels) becomes 0 and the ink 255,
    inverting dark-on-light pictures; the ink's bounding box is resampled by area averaging so its
    longer side is 20 pixels (then rescaled so its strongest ink is 255) and placed in a 28x28 frame
    with its centre of mass at (14, 14) (shift rounded, the digit kept inside the frame).
    Levels less than NOISE_SIGMAS noise deviations (the border's median absolute deviation, as a
    Gaussian sigma) above the background count as background: a clean picture loses nothing and a
    noisy one keeps a tight bounding box. Raises ValueError "no digit found" when no ink stands
    MIN_CONTRAST grey levels above that floor.
    """
    x = np.asarray(image, dtype=np.float64)
    if x.ndim != 2 or x.size == 0 or not np.isfinite(x).all():
        raise ValueError(f"image must be a non-empty 2-D array of finite grey levels, got shape {x.shape}")
    if np.median(_border(x)) > (x.min() + x.max()) / 2:  # light background: dark ink
        x = -x
    border = _border(x)
    background = np.median(border)
    floor = background + NOISE_SIGMAS * 1.4826 * np.median(np.abs(border - background))
    contrast = x.max() - floor
    if contrast < MIN_CONTRAST:
        raise ValueError("no digit found (the image has no ink that stands out from its background)")
    ink = np.clip((x - floor) / contrast, 0.0, 1.0)
    rows, cols = np.nonzero(ink)
    ink = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]

    h, w = ink.shape
    scale = DIGIT_SIZE / max(h, w)
    out_h, out_w = max(1, round(h * scale)), max(1, round(w * scale))
    digit = _area_weights(h, out_h) @ ink @ _area_weights(w, out_w).T
    digit /= digit.max()  # averaging dims thin strokes: the strongest ink is 255 again

    mass = digit.sum()
    centre_r = (np.arange(out_h) @ digit.sum(axis=1)) / mass
    centre_c = (np.arange(out_w) @ digit.sum(axis=0)) / mass
    top = min(max(round(FRAME_SIZE / 2 - centre_r), 0), FRAME_SIZE - out_h)
    left = min(max(round(FRAME_SIZE / 2 - centre_c), 0), FRAME_SIZE - out_w)
    frame = np.zeros((FRAME_SIZE, FRAME_SIZE))
    frame[top:top + out_h, left:left + out_w] = digit
    return _to_uint8(frame)


def load_digits(paths):
    """Picture files of one digit each -> (N, 28, 28) uint8 in MNIST's convention (read_image + mnist_style)."""
    digits = []
    for path in paths:
        image = read_image(path)
        try:
            digits.append(mnist_style(image))
        except ValueError as exc:
            raise ValueError(f"{os.fspath(path)}: {exc}") from None
    return np.array(digits, np.uint8).reshape(-1, FRAME_SIZE, FRAME_SIZE)
