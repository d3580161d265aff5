"""The reference's conventions, by hand-computed values (what self-consistency cannot pin: sum vs average,
correlation vs convolution, table orientation, the squashing constants, the losses), and the constants
(Table I, the Fig. 3 codes) against the paper."""
import numpy as np
import pytest

from lenet_fast.nn import reference as R
from lenet_fast.nn.constants import C3_TABLE, RBF_CENTERS, SQUASH_A, SQUASH_S


# --- hand-computed forward values: conventions -------------------------------------------------------

def test_subsample_is_coef_times_block_sum_plus_bias():
    """S2/S4: out = coef * (SUM of the 2x2 block) + bias, per map (not the average)."""
    x = np.arange(32, dtype=np.float64).reshape(1, 2, 4, 4)
    out = R.subsample_forward(x, np.array([0.5, -2.0]), np.array([0.25, 1.0]))
    # block sums of 0..15: [[0+1+4+5, 2+3+6+7], [8+9+12+13, 10+11+14+15]] = [[10, 18], [42, 50]]; +64 for 16..31
    expected = np.array([[[0.5 * 10 + 0.25, 0.5 * 18 + 0.25], [0.5 * 42 + 0.25, 0.5 * 50 + 0.25]],
                         [[-2.0 * 74 + 1.0, -2.0 * 82 + 1.0], [-2.0 * 106 + 1.0, -2.0 * 114 + 1.0]]])
    np.testing.assert_allclose(out[0], expected, rtol=0, atol=1e-12)


def test_conv2d_is_cross_correlation_by_hand():
    """conv2d on a 3x3 input with kernel [[1,2],[3,4]] gives the hand-computed cross-correlation."""
    x = np.arange(1, 10, dtype=np.float64).reshape(1, 1, 3, 3)          # [[1,2,3],[4,5,6],[7,8,9]]
    w = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    out = R.conv2d_forward(x, w, np.array([0.5]))
    # out[0,0] = 1*1 + 2*2 + 3*4 + 4*5 = 37 (a flipped kernel, i.e. true convolution, would give 23)
    expected = np.array([[37.0, 47.0], [67.0, 77.0]]) + 0.5
    np.testing.assert_allclose(out[0, 0], expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("i, j", [(0, 0), (0, 1), (1, 0), (2, 1), (2, 0)])
def test_conv2d_single_tap_is_not_flipped(i, j):
    """With one nonzero tap w[i, j], out[y, x] = w[i, j] * x[y + i, x + j] (no flip, rows before cols)."""
    rng = np.random.default_rng(12)
    x = rng.normal(size=(1, 1, 5, 6))
    w = np.zeros((1, 1, 3, 2))
    w[0, 0, i, j] = 2.5
    out = R.conv2d_forward(x, w, np.zeros(1))
    assert out.shape == (1, 1, 3, 5)
    np.testing.assert_allclose(out[0, 0], 2.5 * x[0, 0, i:i + 3, j:j + 5], rtol=1e-15, atol=0)


def test_conv2d_table_orientation_is_input_by_output():
    """table[c, k] with c = input map, k = output map; an output reading no input is just its bias."""
    table = np.array([[1, 0, 1],
                      [0, 0, 1]], dtype=np.uint8)     # in 0 -> out 0, 2; in 1 -> out 2; out 1 reads nothing
    x = np.stack([np.full((2, 2), 2.0), np.full((2, 2), 3.0)])[None]      # (1, 2, 2, 2)
    w = np.array([[1.0, 2.0], [11.0, 12.0], [21.0, 22.0]]).reshape(3, 2, 1, 1)   # w[k, c]
    b = np.array([100.0, 200.0, 300.0])
    out = R.conv2d_forward(x, w, b, table)
    expected = [100 + 1 * 2, 200, 300 + 21 * 2 + 22 * 3]   # 102, 200, 408
    for k in range(3):
        np.testing.assert_array_equal(out[0, k], np.full((2, 2), float(expected[k])))
    # the same with a spatial kernel: the unconnected output map is exactly its bias everywhere
    rng = np.random.default_rng(13)
    x, w = rng.normal(size=(2, 2, 4, 5)), rng.normal(size=(3, 2, 2, 3))
    out = R.conv2d_forward(x, w, b, table)
    assert np.array_equal(out[:, 1], np.full((2, 3, 3), 200.0))
    np.testing.assert_allclose(out[:, 0], R.conv2d_forward(x[:, :1], w[:1, :1], b[:1])[:, 0], rtol=1e-14)


def test_squash_constants():
    """f(a) = 1.7159 tanh(2a/3): f(1) = 1, f(-1) = -1 (to 1e-4), f'(0) = A*S, and f is odd."""
    assert SQUASH_A == 1.7159 and SQUASH_S == pytest.approx(2.0 / 3.0, rel=1e-15)
    f = R.squash_forward(np.array([1.0, -1.0, 0.0]))
    assert abs(f[0] - 1.0) < 1e-4 and abs(f[1] + 1.0) < 1e-4 and f[2] == 0.0
    assert R.squash_backward(np.array([1.0]), R.squash_forward(np.array([0.0])))[0] == pytest.approx(
        SQUASH_A * SQUASH_S, rel=1e-14)
    assert SQUASH_A * SQUASH_S == pytest.approx(1.1439, abs=1e-4)
    a = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(R.squash_forward(-a), -R.squash_forward(a), rtol=1e-15)


def test_rbf_by_hand():
    """y_i = sum_j (x_j - w_ij)^2, a squared distance with no 1/2 factor."""
    out = R.rbf_forward(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0], [1.0, -1.0]]))
    np.testing.assert_allclose(out, [[5.0, 9.0]], rtol=1e-15)


def test_rbf_penalties_of_the_digit_codes_are_four_times_hamming():
    """x = centers[d] has penalty 0 for d and 4 * Hamming(d, e) for e; Hamming range is 12 (6 vs 8)..50."""
    penalties = R.rbf_forward(RBF_CENTERS, RBF_CENTERS)
    hamming = np.array([[sum(a != b for a, b in zip(RBF_CENTERS[d], RBF_CENTERS[e])) for e in range(10)]
                        for d in range(10)])
    np.testing.assert_array_equal(np.diag(penalties), np.zeros(10))
    np.testing.assert_array_equal(penalties, 4.0 * hamming)
    off = hamming + np.diag(np.full(10, 10**6))
    assert off.min() == 12 and hamming.max() == 50
    assert {tuple(p) for p in np.argwhere(np.triu(off) == 12)} == {(6, 8)}
    assert {tuple(p) for p in np.argwhere(np.triu(hamming) == 50)} == {(1, 4), (1, 8), (4, 7)}


def test_maxpool_ties_go_to_first_maximum_row_major():
    """The gradient of a 2x2 block with ties goes to its first maximal element in row-major order."""
    x = np.array([[3.0, 5.0, 7.0, 7.0],
                  [5.0, 1.0, 7.0, 7.0],
                  [1.0, 2.0, 0.0, -1.0],
                  [4.0, 4.0, -2.0, 0.0]]).reshape(1, 1, 4, 4)
    out = R.maxpool_forward(x)
    np.testing.assert_array_equal(out[0, 0], [[5.0, 7.0], [4.0, 0.0]])
    dx = R.maxpool_backward(np.array([[10.0, 20.0], [30.0, 40.0]]).reshape(1, 1, 2, 2), x, out)
    expected = np.array([[0.0, 10.0, 20.0, 0.0],
                         [0.0, 0.0, 0.0, 0.0],
                         [0.0, 0.0, 40.0, 0.0],
                         [30.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(dx[0, 0], expected)


def test_mse_loss_by_hand():
    """Eq. 8: the per-sample loss is the penalty of the correct class (no 1/2)."""
    p = np.array([[3.0, 1.0, 2.0], [0.5, 4.0, 6.0]])
    np.testing.assert_array_equal(R.mse_loss(p, np.array([2, 1])), [2.0, 4.0])
    np.testing.assert_array_equal(R.mse_loss_backward(p, np.array([2, 1])), [[0, 0, 0.5], [0, 0.5, 0]])


@pytest.mark.parametrize("j", [1.0, 0.3])
def test_map_loss_matches_naive_formula(j):
    """Eq. 9: y_D + log(exp(-j) + sum_i exp(-y_i)), the sum over ALL classes, for small penalties."""
    rng = np.random.default_rng(14)
    p = rng.uniform(0.0, 3.0, size=(4, 10))
    labels = np.array([0, 3, 9, 3])
    naive = p[np.arange(4), labels] + np.log(np.exp(-j) + np.exp(-p).sum(axis=1))
    np.testing.assert_allclose(R.map_loss(p, labels, j), naive, rtol=1e-13)
    posterior = np.exp(-p) / (np.exp(-j) + np.exp(-p).sum(axis=1, keepdims=True))
    onehot = np.eye(10)[labels]
    np.testing.assert_allclose(R.map_loss_backward(p, labels, j), (onehot - posterior) / 4, rtol=1e-12, atol=1e-15)


def test_map_loss_is_stable_for_large_penalties():
    """Penalties ~1e4 (where exp(-y) underflows) still give finite, correct loss and gradient."""
    rng = np.random.default_rng(15)
    p = 1e4 + rng.uniform(0.0, 100.0, size=(3, 10))
    labels = np.array([1, 5, 8])
    # j = 1: the rubbish class dominates, loss = y_D - j
    loss = R.map_loss(p, labels, 1.0)
    assert np.all(np.isfinite(loss))
    np.testing.assert_allclose(loss, p[np.arange(3), labels] - 1.0, rtol=1e-15)
    grad = R.map_loss_backward(p, labels, 1.0)
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, np.eye(10)[labels] / 3, atol=1e-300)
    # j = 2e4 and all penalties 1e4: naive gives log(0); exact value is log(10 + e^-1e4) = log(10)
    flat = np.full((2, 10), 1e4)
    # (y_D + log(...) cancels 1e4 against 1e4, so only ~1 ulp of 1e4 = 2e-12 absolute accuracy is possible)
    np.testing.assert_allclose(R.map_loss(flat, np.array([0, 7]), 2e4), np.log(10.0), rtol=0, atol=1e-11)
    np.testing.assert_allclose(R.map_loss_backward(flat, np.array([0, 7]), 2e4),
                               (np.eye(10)[[0, 7]] - 0.1) / 2, rtol=0, atol=1e-11)


def test_cross_entropy_by_hand_and_stable():
    """cross_entropy = log sum exp(z) - z_label; finite for logits ~1e4."""
    z = np.array([[0.0, np.log(3.0)], [1e4, 1e4 - np.log(3.0)]])
    np.testing.assert_allclose(R.cross_entropy_loss(z, np.array([0, 1])), [np.log(4.0), np.log(4.0)], rtol=1e-10)
    np.testing.assert_allclose(R.cross_entropy_loss_backward(z, np.array([0, 1])),
                               [[(0.25 - 1) / 2, 0.75 / 2], [0.75 / 2, (0.25 - 1) / 2]], rtol=1e-10)


# --- constants ------------------------------------------------------------------------------------

# LENET5_SPEC.md §2: the S2 inputs of each C3 map, written out literally.
C3_INPUTS = [
    {0, 1, 2}, {1, 2, 3}, {2, 3, 4}, {3, 4, 5}, {0, 4, 5}, {0, 1, 5},
    {0, 1, 2, 3}, {1, 2, 3, 4}, {2, 3, 4, 5}, {0, 3, 4, 5}, {0, 1, 4, 5}, {0, 1, 2, 5},
    {0, 1, 3, 4}, {1, 2, 4, 5}, {0, 2, 3, 5},
    {0, 1, 2, 3, 4, 5},
]


def test_c3_table_matches_table_one():
    """C3_TABLE is (6 S2 maps, 16 C3 maps), 60 connections, fan-in 3/4/6, the per-map sets of Table I."""
    assert C3_TABLE.shape == (6, 16) and C3_TABLE.dtype == np.uint8
    assert set(np.unique(C3_TABLE)) == {0, 1}
    assert C3_TABLE.sum() == 60
    np.testing.assert_array_equal(C3_TABLE.sum(axis=0), [3] * 6 + [4] * 9 + [6])
    for k, inputs in enumerate(C3_INPUTS):
        assert set(np.flatnonzero(C3_TABLE[:, k])) == inputs, k


def test_rbf_centers_counts():
    """RBF_CENTERS is (10, 84) of +-1 with the +1 counts per digit of Fig. 3, and sums to -142."""
    assert RBF_CENTERS.shape == (10, 84) and RBF_CENTERS.dtype == np.float64
    assert set(np.unique(RBF_CENTERS)) == {-1.0, 1.0}
    np.testing.assert_array_equal((RBF_CENTERS == 1).sum(axis=1), [35, 27, 33, 32, 41, 35, 39, 25, 43, 39])
    assert RBF_CENTERS.sum() == -142


def _read_fig3_cells(path):
    cells, current = {}, None
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("cell"):
            current = int(line.split()[1])
            cells[current] = []
        elif line.strip() and current is not None:
            cells[current].append(line.strip())
    return cells


def test_rbf_centers_match_fig3_file(shared_dir):
    """Cells 16..25 ('0'..'9') of the extracted Fig. 3 (in the shared data folder) equal RBF_CENTERS row
    for row ('#' = +1)."""
    cells = _read_fig3_cells(shared_dir / "fig3_rbf_codes_ascii96.txt")
    assert sorted(cells) == list(range(96))
    assert all(len(rows) == 12 and all(len(r) == 7 for r in rows) for rows in cells.values())
    for d in range(10):
        code = np.array([1.0 if ch == "#" else -1.0 for ch in "".join(cells[16 + d])])
        np.testing.assert_array_equal(code, RBF_CENTERS[d], err_msg=f"digit {d}")
    assert all(set("".join(cells[n])) == {"."} for n in (0, 95))
