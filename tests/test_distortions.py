"""The affine warp kernel against a NumPy reference, its exact cases, and `Distortions`' random maps."""
import json

import numpy as np
import pytest

from lenet_fast.nn.constants import INPUT_BACKGROUND, INPUT_FOREGROUND
from lenet_fast.train.distortions import Distortions, affine_matrices, affine_warp

DTYPES = [np.float32, np.float64]
TOL = {np.float32: 1e-5, np.float64: 1e-12}
IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def reference_warp(x, matrices, background):
    """Slow, plain bilinear sampling: the four neighbours of each source point, weighted by area."""
    n, c, h, w = x.shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = cols - (w - 1) / 2, rows - (h - 1) / 2
    out = np.empty(x.shape)
    for k in range(n):
        (a, b, tx), (d, e, ty) = matrices[k]
        xs = a * u + b * v + tx + (w - 1) / 2
        ys = d * u + e * v + ty + (h - 1) / 2
        x0, y0 = np.floor(xs), np.floor(ys)
        fx, fy = xs - x0, ys - y0
        total = 0.0
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                r, col = (y0 + dy).astype(int), (x0 + dx).astype(int)
                inside = (r >= 0) & (r < h) & (col >= 0) & (col < w)
                pixel = np.where(inside, x[k][:, r.clip(0, h - 1), col.clip(0, w - 1)], background)
                total = total + wy * wx * pixel
        out[k] = total
    return out


def _inputs(rng, n, dtype):
    return rng.uniform(INPUT_BACKGROUND, INPUT_FOREGROUND, size=(n, 1, 32, 32)).astype(dtype)


def _random_matrices(rng, n):
    """Near-identity maps that push parts of the image out of the frame, and arbitrary ones."""
    near = IDENTITY + np.concatenate([rng.uniform(-0.4, 0.4, (n, 2, 2)), rng.uniform(-8, 8, (n, 2, 1))],
                                     axis=2)
    wild = rng.uniform(-2, 2, (n, 2, 3)) * [1, 1, 10]
    return np.concatenate([near, wild])


def _decompose(m):
    """(tx, ty, scale, squeeze, shear, lower-left entry of A) of the forward maps behind inverse maps m."""
    a = np.linalg.inv(m[:, :, :2])
    t = -np.einsum("nij,nj->ni", a, m[:, :, 2])
    return (t[:, 0], t[:, 1], np.sqrt(np.linalg.det(a)), np.sqrt(a[:, 0, 0] / a[:, 1, 1]),
            a[:, 0, 1] / a[:, 0, 0], a[:, 1, 0])


# --- the kernel --------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_kernel_matches_reference(dtype, n_threads, rng):
    matrices = _random_matrices(rng, 6)
    x = _inputs(rng, len(matrices), dtype)
    out = affine_warp(x, matrices, n_threads=n_threads)
    assert out.dtype == dtype and out.shape == x.shape
    np.testing.assert_allclose(out, reference_warp(x.astype(np.float64), matrices, INPUT_BACKGROUND),
                               rtol=0, atol=TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_identity_returns_the_input_exactly(dtype, rng):
    x = _inputs(rng, 3, dtype)
    np.testing.assert_array_equal(affine_warp(x, np.broadcast_to(IDENTITY, (3, 2, 3))), x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_integer_translation_shifts_by_one_pixel(dtype, rng):
    x = _inputs(rng, 2, dtype)
    bg = dtype(INPUT_BACKGROUND)
    source_right = affine_warp(x, np.broadcast_to([[1.0, 0, 1], [0, 1, 0]], (2, 2, 3)))
    np.testing.assert_array_equal(source_right[..., :-1], x[..., 1:])   # reads one pixel to the right
    assert (source_right[..., -1] == bg).all()                        # background enters on the right
    down = affine_warp(x, affine_matrices(0, 1, 1, 1, 0)[None].repeat(2, 0))
    np.testing.assert_array_equal(down[..., 1:, :], x[..., :-1, :])   # translate_y=1 moves it down
    assert (down[..., 0, :] == bg).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_mirror_maps_match_explicit_flips(dtype, rng):
    x = _inputs(rng, 2, dtype)
    horizontal = affine_warp(x, np.broadcast_to([[-1.0, 0, 0], [0, 1, 0]], (2, 2, 3)))
    np.testing.assert_array_equal(horizontal, x[..., ::-1])
    vertical = affine_warp(x, np.broadcast_to([[1.0, 0, 0], [0, -1, 0]], (2, 2, 3)))
    np.testing.assert_array_equal(vertical, x[..., ::-1, :])


def test_far_away_source_reads_background(rng):
    # huge, overflowing (inf) and undefined (inf - inf) source coordinates are all outside
    x = _inputs(rng, 2, np.float64)
    matrices = [[[1.0, 0, 1e300], [0, 1, 0]], [[1e308, -1e308, 0], [0, 1e308, 0]]]
    out = affine_warp(x, matrices, background=0.5)
    assert (out == 0.5).all()


def test_empty_batch_and_non_contiguous_input(rng):
    assert affine_warp(np.zeros((0, 1, 32, 32)), np.zeros((0, 2, 3))).shape == (0, 1, 32, 32)
    x = _inputs(rng, 4, np.float64)[::2]
    x.setflags(write=False)
    matrices = _random_matrices(rng, 1)
    np.testing.assert_array_equal(affine_warp(x, matrices), affine_warp(x.copy(), matrices))


@pytest.mark.parametrize("call, error, match", [
    (lambda x, m: affine_warp(x.astype(np.int32), m), TypeError, "x"),
    (lambda x, m: affine_warp(x[:, 0], m), ValueError, "x must have 4 dimensions"),
    (lambda x, m: affine_warp(x[..., :28, :28], m), ValueError, "x must have shape"),
    (lambda x, m: affine_warp(x, m[:1]), ValueError, "matrices must have shape"),
    (lambda x, m: affine_warp(x, m[:, :, :2]), ValueError, "matrices must have shape"),
    (lambda x, m: affine_warp(x, m.astype(complex)), TypeError, "matrices"),
    (lambda x, m: affine_warp(x, np.where(m == 0, np.nan, m)), ValueError, "matrices must be finite"),
    (lambda x, m: affine_warp(x, m, background=np.inf), ValueError, "background"),
    (lambda x, m: affine_warp(x, m, background="white"), ValueError, "background"),
    (lambda x, m: affine_warp(x, m, out=np.empty_like(x, np.float32)), ValueError, "out"),
    (lambda x, m: affine_warp(x, m, out=np.empty((2, 1, 32, 31))), ValueError, "out"),
    (lambda x, m: affine_warp(x, m, out=x), ValueError, "out must not overlap x"),
    (lambda x, m: affine_warp(x, m, n_threads=0), ValueError, "n_threads"),
])
def test_warp_validation_names_the_argument(call, error, match, rng):
    with pytest.raises(error, match=match):
        call(_inputs(rng, 2, np.float64), np.broadcast_to(IDENTITY, (2, 2, 3)).copy())


# --- Distortions --------------------------------------------------------------------------------------

def test_defaults_are_the_documented_ranges():
    assert Distortions() == Distortions(translate=2.0, scale=(0.9, 1.1), squeeze=(0.85, 1.15), shear=0.15,
                                        keep_original=0.1)


def test_drawn_parameters_stay_in_range_and_cover_it():
    d = Distortions(translate=1.5, scale=(0.8, 1.2), squeeze=(0.9, 1.3), shear=0.2, keep_original=0.25)
    tx, ty, s, q, h, lower_left = _decompose(d.matrices(np.random.default_rng(0), 20000))
    eps = 1e-9
    for values, low, high in [(tx, -1.5, 1.5), (ty, -1.5, 1.5), (s, 0.8, 1.2), (q, 0.9, 1.3), (h, -0.2, 0.2)]:
        moved = values[values != (0.0 if low < 0 else 1.0)]                    # the distorted samples
        assert low - eps <= values.min() and values.max() <= high + eps
        assert moved.min() < low + 0.01 * (high - low) and moved.max() > high - 0.01 * (high - low)
    np.testing.assert_array_equal(lower_left, 0.0)                             # no vertical shear
    kept = (tx == 0) & (ty == 0) & (s == 1) & (q == 1) & (h == 0)
    assert abs(kept.mean() - 0.25) < 0.02


def test_affine_matrices_round_trip(rng):
    params = [rng.uniform(-3, 3, 50), rng.uniform(-3, 3, 50), rng.uniform(0.5, 2, 50),
              rng.uniform(0.5, 2, 50), rng.uniform(-0.5, 0.5, 50)]
    for got, want in zip(_decompose(affine_matrices(*params)), params):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_parameters_act_on_the_digit_as_documented():
    """A Gaussian blob's centroid moves by t and its covariance becomes A cov A^T (forward map A)."""
    rows, cols = np.mgrid[0:32, 0:32] - 15.5
    blob = np.exp(-0.5 * ((cols / 2.0) ** 2 + (rows / 3.0) ** 2))
    x = (INPUT_BACKGROUND + blob)[None, None].repeat(3, 0)
    tx, ty, s, q, h = np.array([[1.5, -1.0, 0.0], [-2.0, 0.5, 0.0], [1.1, 0.9, 1.0], [0.85, 1.15, 1.0],
                                [0.0, 0.15, -0.15]])
    out = affine_warp(x, affine_matrices(tx, ty, s, q, h)) - INPUT_BACKGROUND

    def moments(image):
        mass = image / image.sum()
        mean = np.array([(mass * cols).sum(), (mass * rows).sum()])
        d = np.stack([cols - mean[0], rows - mean[1]])
        return mean, np.einsum("iyx,jyx,yx->ij", d, d, mass)

    _, cov = moments(blob)
    for k in range(3):
        a = s[k] * np.array([[q[k], q[k] * h[k]], [0, 1 / q[k]]])
        mean_k, cov_k = moments(out[k, 0])
        np.testing.assert_allclose(mean_k, [tx[k], ty[k]], atol=0.02)
        np.testing.assert_allclose(cov_k, a @ cov @ a.T, atol=0.05 * np.abs(cov_k).max())


@pytest.mark.parametrize("dtype", DTYPES)
def test_apply_is_seeded_and_independent_of_threads(dtype, rng):
    x = _inputs(rng, 16, dtype)
    d = Distortions()
    runs = [d.apply(x, np.random.default_rng(7), n_threads=t) for t in (1, 2, 3, 1)]
    for run in runs[1:]:
        np.testing.assert_array_equal(run, runs[0])
    assert runs[0].dtype == dtype
    assert not np.array_equal(d.apply(x, np.random.default_rng(8)), runs[0])
    out = np.empty_like(x)
    assert d.apply(x, np.random.default_rng(7), out=out) is out
    np.testing.assert_array_equal(out, runs[0])


def test_apply_in_place_and_config_round_trip(rng):
    x = _inputs(rng, 6, np.float64)
    d = Distortions(translate=1.0, scale=(0.95, 1.0), squeeze=[0.9, 1.1], shear=0.1, keep_original=0.5)
    expected = d.apply(x, np.random.default_rng(3))
    assert d.apply(x, np.random.default_rng(3), out=x) is x
    np.testing.assert_array_equal(x, expected)
    assert Distortions(**json.loads(json.dumps(d.config()))) == d


def test_kept_samples_are_exact_copies(rng):
    x = _inputs(rng, 5, np.float32)
    np.testing.assert_array_equal(Distortions(keep_original=1.0).apply(x, rng), x)
    none = Distortions(translate=0, scale=(1, 1), squeeze=(1, 1), shear=0, keep_original=0)
    np.testing.assert_array_equal(none.apply(x, rng), x)


@pytest.mark.parametrize("kwargs, match", [
    ({"translate": -1}, "translate"), ({"translate": np.nan}, "translate"), ({"translate": "2"}, "translate"),
    ({"scale": (1.1, 0.9)}, "scale"), ({"scale": (0, 1)}, "scale"), ({"scale": 1.0}, "scale"),
    ({"scale": (0.9, np.inf)}, "scale"), ({"squeeze": (0.9, 1.0, 1.1)}, "squeeze"),
    ({"squeeze": (-1, 1)}, "squeeze"), ({"shear": -0.1}, "shear"), ({"shear": None}, "shear"),
    ({"keep_original": 1.5}, "keep_original"), ({"keep_original": -0.1}, "keep_original"),
    ({"translate": np.inf}, "translate"), ({"keep_original": True}, "keep_original"),
])
def test_distortions_reject_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Distortions(**kwargs)


def test_matrices_validation():
    with pytest.raises(TypeError, match="rng"):
        Distortions().matrices(0, 3)
    with pytest.raises(ValueError, match="n must be"):
        Distortions().matrices(np.random.default_rng(0), -1)
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        Distortions().apply(np.zeros((2, 32, 32)), np.random.default_rng(0))
