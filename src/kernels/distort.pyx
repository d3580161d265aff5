"""Affine warp of input planes with bilinear sampling: the paper's planar distortions (Sec. III-B).

Design:
- ``matrices[n]`` is the *inverse* map of sample n, in coordinates centred on the image:
  output pixel (row i, column j) sits at (u, v) = (j - (W-1)/2, i - (H-1)/2) and reads the source at
  (xs, ys) = (m00 u + m01 v + m02, m10 u + m11 v + m12), i.e. column xs + (W-1)/2, row ys + (H-1)/2.
- Bilinear interpolation between the four neighbours of the source point; a neighbour outside the
  image reads ``background`` (the plane is extended with background forever). Coordinates, weights and
  the sum are computed in double and rounded once to the output dtype, so an identity map or an
  integer translation copies pixels exactly.
- One sample at a time in a ``noexcept nogil`` helper; static ``prange`` over the batch. Samples are
  independent, so the result does not depend on the number of threads.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport floor


cdef inline double _pixel(const floating* plane, Py_ssize_t row, Py_ssize_t col, Py_ssize_t H,
                          Py_ssize_t W, double background) noexcept nogil:
    if 0 <= row < H and 0 <= col < W:
        return plane[row * W + col]
    return background


cdef void _warp_one(floating* out, const floating* x, const double* m, double background,
                    Py_ssize_t C, Py_ssize_t H, Py_ssize_t W) noexcept nogil:
    # x (C, H, W) -> out (C, H, W); m the 2x3 inverse map, row-major
    cdef double cx = 0.5 * (W - 1), cy = 0.5 * (H - 1), u, v, xs, ys, x0, y0, fx, fy
    cdef Py_ssize_t c, i, j, r0, c0
    cdef const floating* plane
    for i in range(H):
        v = i - cy
        for j in range(W):
            u = j - cx
            xs = m[0] * u + m[1] * v + m[2] + cx
            ys = m[3] * u + m[4] * v + m[5] + cy
            if not (-1.0 < xs < W and -1.0 < ys < H):   # all four neighbours outside (or NaN)
                for c in range(C):
                    out[(c * H + i) * W + j] = <floating>background
                continue
            x0 = floor(xs)
            y0 = floor(ys)
            fx = xs - x0
            fy = ys - y0
            c0 = <Py_ssize_t>x0
            r0 = <Py_ssize_t>y0
            for c in range(C):
                plane = x + c * H * W
                out[(c * H + i) * W + j] = <floating>(
                    (1.0 - fy) * ((1.0 - fx) * _pixel(plane, r0, c0, H, W, background)
                                  + fx * _pixel(plane, r0, c0 + 1, H, W, background))
                    + fy * ((1.0 - fx) * _pixel(plane, r0 + 1, c0, H, W, background)
                            + fx * _pixel(plane, r0 + 1, c0 + 1, H, W, background)))


def affine_warp(floating[:, :, :, ::1] out,           # OUT (N, C, H, W), must not overlap x
                const floating[:, :, :, ::1] x,       # IN  (N, C, H, W)
                const double[:, :, ::1] matrices,     # IN  (N, 2, 3) inverse maps, centred coordinates
                double background,                    # value of every pixel outside the image
                int n_threads):
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3], n
    if N == 0:
        return
    for n in prange(N, schedule="static", nogil=True, num_threads=n_threads):
        _warp_one(&out[n, 0, 0, 0], &x[n, 0, 0, 0], &matrices[n, 0, 0], background, C, H, W)
