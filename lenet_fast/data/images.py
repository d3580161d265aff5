"""Picture files for `lenet-fast predict`: reading (Pillow), writing PNG, and MNIST-style digits.

`read_image` reads any picture Pillow reads (JPEG, PNG, BMP, TIFF, WebP, PGM/PPM, GIF, ...) as a 2-D
uint8 grey image; `mnist_style` turns a picture of one digit into a 28x28 image in MNIST's convention
(0 = background, 255 = ink, size-normalised and centred by mass).
"""
import os
import stat
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..io.archive import atomic_write

SUPPORTED = "JPEG, PNG, BMP, TIFF, WebP, PGM and the other formats Pillow reads"
# Larger pictures are refused before they are decoded: a small file can claim a huge image (a
# decompression bomb). Raise it (lenet_fast.data.images.MAX_PIXELS = ...) to read larger pictures;
# above Pillow's own limit (2 * PIL.Image.MAX_IMAGE_PIXELS) raise that one too.
MAX_PIXELS = 2 ** 26
# ... and so are pictures whose decoded pixels would take more memory (Pillow keeps 1, 2 or 4 bytes per
# pixel by mode) and files of more bytes (lenet_fast.data.images.MAX_DECODED_BYTES / MAX_FILE_BYTES raise
# them). Only regular files are read: directories, devices (/dev/zero) and FIFOs are refused unread.
MAX_DECODED_BYTES = 2 ** 28
MAX_FILE_BYTES = 2 ** 27
WORK_SIDE = 1024      # a larger picture is box-averaged to at most this many pixels a side before mnist_style
_SIXTEEN_BIT = ("I", "I;16", "I;16B", "I;16L", "I;16N")  # how Pillow holds 16-bit grey (PNG, PGM, TIFF)
_FILE_ERRORS = (FileNotFoundError, IsADirectoryError, PermissionError)  # raised as they are

DIGIT_SIZE = 20       # MNIST: the digit's longer side, in pixels
FRAME_SIZE = 28       # MNIST: the frame the digit is centred in, by its centre of mass
MIN_CONTRAST = 32.0   # ink must stand out from the background noise by this many grey levels (of 255)
NOISE_SIGMAS = 6.0    # levels within this many noise deviations of the background are background
LOSSY_NOISE = 32.0    # ... and within this many grey levels in a lossy picture (its compression rings)
LOSSY_FORMATS = ("JPEG", "MPO", "WEBP", "JPEG2000")


def write_png(path, image):
    """Atomically write a 2-D uint8 array as an 8-bit greyscale PNG (0 = black, 255 = white)."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 2 or 0 in image.shape:
        raise ValueError(f"image must be a non-empty 2-D uint8 array, got {image.dtype} {image.shape}")
    picture = Image.fromarray(np.ascontiguousarray(image))
    atomic_write(path, lambda f: picture.save(f, format="PNG", optimize=True))


def read_image(path):
    """A picture file as a 2-D uint8 grey image (0 = black, 255 = white, as stored in the file).

    Any format Pillow reads; the format is detected from the file's content, not its name. Colour
    becomes grey with the BT.601 luma weights (Pillow's "L"); transparency is composited over white;
    16-bit grey is rescaled to 0..255; the EXIF orientation of photos is applied; of an animation or
    a multi-page file, the first frame is read. Raises FileNotFoundError for a missing file and, for
    anything else that stops the picture being read (an unknown format, a truncated or corrupt file,
    more than MAX_PIXELS pixels), a one-line ValueError that names the file.
    """
    return _read(path)[0]


def _read(path):
    """(read_image's grey image, Pillow's name of the file's format)."""
    path = os.fspath(path)
    try:
        _check_file(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's warnings (corrupt EXIF, ...): the error is the one line
            with Image.open(path) as picture:
                width, height = picture.size
                if width * height > MAX_PIXELS:
                    raise ValueError(f"image too large ({width}x{height} = {width * height:,} pixels; the limit "
                                     f"against decompression bombs is {MAX_PIXELS:,}: raise "
                                     "lenet_fast.data.images.MAX_PIXELS to read it)")
                decoded = width * height * _pixel_bytes(picture.mode)
                if decoded > MAX_DECODED_BYTES:
                    raise ValueError(f"image too large ({width}x{height} {picture.mode} pixels decode to "
                                     f"{decoded:,} bytes; the limit is {MAX_DECODED_BYTES:,}: raise "
                                     "lenet_fast.data.images.MAX_DECODED_BYTES to read it)")
                if width == 0 or height == 0:
                    raise ValueError(f"zero-size image ({width}x{height})")
                return _grey(ImageOps.exif_transpose(picture)), picture.format
    except _FILE_ERRORS:
        raise
    except Exception as exc:  # Pillow's decoders raise many kinds (OSError, SyntaxError, struct.error, ...)
        raise ValueError(f"{path}: {_describe(exc)}") from exc


def _check_file(path):
    """Refuse, before Pillow reads a byte, what is not a regular picture file of a sensible size."""
    mode = os.stat(path)
    if stat.S_ISDIR(mode.st_mode):
        raise IsADirectoryError(f"{path} is a directory, not a picture file")
    if not stat.S_ISREG(mode.st_mode):
        raise ValueError("not a regular file (a device, FIFO or socket), so not a picture file")
    if mode.st_size == 0:
        raise ValueError("empty file")
    if mode.st_size > MAX_FILE_BYTES:
        raise ValueError(f"file too large ({mode.st_size:,} bytes; the limit for a picture file is "
                         f"{MAX_FILE_BYTES:,}: raise lenet_fast.data.images.MAX_FILE_BYTES to read it)")


def _pixel_bytes(mode):
    """Bytes Pillow keeps per decoded pixel of `mode` ("L", "P", "1": 1; 16-bit grey: 2; colour, 32-bit: 4)."""
    return 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4


def _describe(exc):
    """One line saying why Pillow could not read a picture."""
    text = " ".join(str(exc).split())
    if isinstance(exc, UnidentifiedImageError):
        return f"not a picture Pillow can identify (unknown format or damaged header; supported: {SUPPORTED})"
    if isinstance(exc, Image.DecompressionBombError):
        return (f"image too large ({text} Raise PIL.Image.MAX_IMAGE_PIXELS and "
                "lenet_fast.data.images.MAX_PIXELS to read it)")
    if type(exc) is ValueError:  # ours, or Pillow's own one-line reasons
        return text
    return f"cannot read the picture, corrupt or truncated? ({type(exc).__name__}: {text})"


def _grey(picture):
    """A Pillow image as uint8 grey levels: BT.601 luma, transparency composited over white."""
    if picture.mode in _SIXTEEN_BIT:  # Pillow's "L" would clip 16-bit values at 255, not rescale them
        values = np.asarray(picture).astype(np.float64) / 65535.0
        key = picture.info.get("transparency")
        if isinstance(key, int):   # one grey level marked fully transparent
            values[np.asarray(picture) == key] = 1.0
        return _to_uint8(values)
    if picture.has_transparency_data:  # alpha channel, or a palette or colour key with transparency
        rgba = picture.convert("RGBA")
        picture = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    elif picture.mode == "LAB":
        picture = picture.convert("RGB")
    return np.asarray(picture.convert("L"))


def _to_uint8(grey):
    """Grey levels in [0, 1] to uint8 0..255."""
    return np.rint(np.clip(grey, 0.0, 1.0) * 255.0).astype(np.uint8)


def _area_weights(n_in, n_out):
    """(n_out, n_in) matrix resampling a line by area averaging (each output pixel's footprint)."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    pixels = np.arange(n_in)
    overlap = np.minimum(edges[1:, None], pixels + 1) - np.maximum(edges[:-1, None], pixels)
    return np.clip(overlap, 0.0, None) * (n_out / n_in)


def _border(image):
    return np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])


def mnist_style(image, min_noise=0.0):
    """A picture of one digit (2-D grey levels 0..255, any size and polarity) as MNIST's (28, 28) uint8.

    As MNIST was made: the background (the median of the border pixels) becomes 0 and the ink 255,
    inverting dark-on-light pictures; the ink's bounding box is resampled by area averaging so its
    longer side is 20 pixels (then rescaled so its strongest ink is 255) and placed in a 28x28 frame
    with its centre of mass at (14, 14) (shift rounded, the digit kept inside the frame).
    Levels less than NOISE_SIGMAS noise deviations (the border's median absolute deviation, as a
    Gaussian sigma) above the background count as background: a clean picture loses nothing and a
    noisy one keeps a tight bounding box. Levels less than `min_noise` above the background are
    background too (load_digits passes LOSSY_NOISE for JPEG and WebP pictures, whose clean background
    rings faintly next to the ink). Raises ValueError "no digit found" when no ink stands
    MIN_CONTRAST grey levels above that floor.
    """
    x = np.asarray(image, dtype=np.float64)
    if x.ndim != 2 or x.size == 0 or not np.isfinite(x).all():
        raise ValueError(f"image must be a non-empty 2-D array of finite grey levels, got shape {x.shape}")
    if np.median(_border(x)) > (x.min() + x.max()) / 2:  # light background: dark ink
        x = -x
    border = _border(x)
    background = np.median(border)
    floor = background + max(NOISE_SIGMAS * 1.4826 * np.median(np.abs(border - background)), min_noise)
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
    """Picture files of one digit each -> (N, 28, 28) uint8 in MNIST's convention (read_image + mnist_style,
    with LOSSY_NOISE for pictures in a lossy format)."""
    digits = []
    for path in paths:
        image, file_format = _read(path)
        factor = -(-max(image.shape) // WORK_SIDE)
        if factor > 1:      # a digit ends 20 pixels high: box-average a large photo first (time and memory)
            image = np.asarray(Image.fromarray(image).reduce(factor))
        try:
            digits.append(mnist_style(image, LOSSY_NOISE if file_format in LOSSY_FORMATS else 0.0))
        except ValueError as exc:
            raise ValueError(f"{os.fspath(path)}: {exc}") from None
    return np.array(digits, np.uint8).reshape(-1, FRAME_SIZE, FRAME_SIZE)
