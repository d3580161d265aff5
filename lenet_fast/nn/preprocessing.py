"""MNIST-convention images to LeNet-5 input (Sec. II-B of the paper)."""
import numpy as np

from .constants import INPUT_BACKGROUND, INPUT_FOREGROUND


def preprocess(images, dtype="float32"):
    """uint8 images (N, 28, 28) or (N, 32, 32), 0 = background and 255 = ink, to network input.

    28x28 images are padded by 2 background pixels on every side to 32x32; pixels p map linearly to
    ``-0.1 + 1.275 * p / 255`` (background -0.1, full ink 1.175). Returns (N, 1, 32, 32) of `dtype`.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"images must be uint8 (0 = background, 255 = ink), got dtype {images.dtype}")
    if images.ndim != 3 or images.shape[1:] not in ((28, 28), (32, 32)):
        hint = " (a single image needs a batch axis: images[None])" if images.ndim == 2 else ""
        raise ValueError(f"images must have shape (N, 28, 28) or (N, 32, 32), got {images.shape}{hint}")
    dtype = np.dtype(dtype)
    if dtype.type not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    pad = (32 - images.shape[1]) // 2
    scale = (INPUT_FOREGROUND - INPUT_BACKGROUND) / 255.0
    out = np.full((len(images), 1, 32, 32), INPUT_BACKGROUND, dtype=dtype)
    out[:, 0, pad:32 - pad, pad:32 - pad] = INPUT_BACKGROUND + scale * images.astype(dtype)
    return out
