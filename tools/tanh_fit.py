"""Derive the rational approximation of tanh used by the float32 kernels (src/kernels/layers/activation_one.pxd).

    python tools/tanh_fit.py

tanh(x) ~ x P(x^2) / Q(x^2) on [0, 9], P and Q of degree 4, Q(0) = 1: a weighted linear least-squares fit
of x P - tanh(x) Q, reweighted towards the largest relative errors (Lawson's iteration, which tends to
the minimax fit). Prints the coefficients (lowest degree first), the fit's largest relative error, and
the largest error in float32 steps (ulp) of the float32 evaluation, over every 7th float in [2^-20, 12],
and its value at the clamp, which the kernels take for tanh of every larger x: it must be exactly 1.
"""
import numpy as np

CLAMP = 9.0      # tanh(x) rounds to 1 in float32 from here on
DEGREE = 4


def fit(iterations=200):
    x = np.cos(np.linspace(np.pi / 2, 0, 20000)) * CLAMP      # denser towards the clamp
    x = x[x > 1e-6]
    s, f = x * x, np.tanh(x)
    powers = s[:, None] ** np.arange(DEGREE + 1)
    q_values, weights = np.ones_like(x), np.ones_like(x)
    for _ in range(iterations):
        a = np.hstack([x[:, None] * powers, -f[:, None] * powers[:, 1:]])
        scale = np.sqrt(weights) / (f * q_values)               # relative error, linearised
        solution = np.linalg.lstsq(a * scale[:, None], f * scale, rcond=None)[0]
        p, q = solution[:DEGREE + 1], np.concatenate([[1.0], solution[DEGREE + 1:]])
        q_values = np.polyval(q[::-1], s)
        error = (x * np.polyval(p[::-1], s) / q_values - f) / f
        weights *= np.sqrt(np.abs(error) / np.abs(error).max()) + 1e-30
        weights /= weights.sum()
    return p, q, np.abs(error).max()


def tanh_float32(a, p, q):
    """The kernels' evaluation, in float32."""
    p, q = p.astype(np.float32), q.astype(np.float32)
    x = np.minimum(np.abs(a), np.float32(CLAMP))
    s = x * x
    pv, qv = p[-1], q[-1]
    for c in p[-2::-1]:
        pv = pv * s + c
    for c in q[-2::-1]:
        qv = qv * s + c
    return np.copysign(x * pv / qv, a).astype(np.float32)


def main():
    p, q, error = fit()
    print("P =", ", ".join(f"{c:.17g}" for c in p))
    print("Q =", ", ".join(f"{c:.17g}" for c in q))
    print(f"largest relative error of the fit: {error:.3g}")
    bits = np.arange(np.float32(2 ** -20).view(np.int32), np.float32(12).view(np.int32), 7, dtype=np.int32)
    a = bits.view(np.float32)
    exact = np.tanh(a.astype(np.float64)).astype(np.float32)
    ulps = np.abs(tanh_float32(a, p, q).view(np.int32).astype(np.int64) - exact.view(np.int32))
    print(f"float32 evaluation: largest error {ulps.max()} ulp (at x = {a[ulps.argmax()]:.6g}), "
          f"{(ulps == 0).mean():.1%} correctly rounded")
    at_clamp = tanh_float32(np.float32([CLAMP]), p, q)[0]
    print(f"at the clamp, x = {CLAMP:g}: {at_clamp!r} (the kernels need exactly 1: tanh of larger x rounds to 1)")


if __name__ == "__main__":
    main()
