# Included by network.pyx: the forward pass of a whole batch, for inference.

def network_forward(const floating[::1] params,           # IN  (P,) the flat parameters
                    const floating[:, :, :, ::1] x,       # IN  (N, 1, 32, 32)
                    floating[:, ::1] out,                 # OUT (N, 10) penalties (paper) or logits
                    const unsigned char[:, ::1] table,    # IN  (6, 16) C3 connections
                    const floating[:, ::1] centers,       # IN  (10, 84) RBF centres (paper), else unused
                    NetworkLayout layout, bint paper, int n_threads):
    """The whole forward pass: blocks of samples one per vector lane (``_forward_lanes``), then the last
    few samples a few at a time in a thread's work rows; each sample's outputs are the same either way.
    The modern variant's C3 (to S4) is by Winograd's F(2x2, 5x5) (winograd_template.h), the paper's by
    the direct sums of training's forward pass.
    Returns whether every value of x is finite: each thread checks its images as it reads them (a block
    of lanes as it loads them; the rest just before: a separate check would read x from memory once
    more; with x not finite, out is not meaningful)."""
    cdef Layout L = layout.L
    cdef Py_ssize_t N = x.shape[0], BL = _lanes(<floating*>NULL), blocks = N // BL, done = blocks * BL
    cdef Py_ssize_t n, s, first, count, group, block_threads = min(n_threads, blocks)
    cdef Py_ssize_t rest_threads = min(n_threads, N - done), size, not_finite = 0
    cdef Py_ssize_t lanes_size = (LANES_WORK + (0 if paper else LANES_WINOGRAD)) * BL    # a thread's block
    cdef int tid
    cdef const floating* c = &centers[0, 0] if paper else NULL
    cdef floating* c3wt
    cdef floating* c3u = NULL
    cdef floating* work
    cdef floating* lanes
    cdef void* memory
    if N == 0:
        return True
    group = min(LENET_GROUP, (N - done + rest_threads - 1) // rest_threads) if rest_threads else 1
    # the threads' work, then C3's weights (transposed or transformed): 64-byte aligned (malloc: a
    # single image's call stays short)
    size = max(block_threads * lanes_size, rest_threads * group * WORK)
    memory = malloc((size + max(C3_WEIGHTS, WINOGRAD_WEIGHTS)) * sizeof(floating) + 64)
    if memory == NULL:
        raise MemoryError("network_forward: no memory for the work rows")
    work = _aligned(<floating*>memory)
    c3wt = work + size
    if not paper:
        c3u = c3wt
        _winograd_weights(c3u, &params[L.c3w])
    with nogil:
        # blocks to threads as they come free: a sample's outputs do not depend on its thread, and on a
        # shared machine one core is often slower than the other
        for n in prange(blocks, schedule="dynamic", num_threads=max(block_threads, 1)):
            tid = threadid()
            lanes = work + tid * lanes_size
            not_finite += not _forward_lanes(lanes, lanes + G * BL, &params[0], &x[n * BL, 0, 0, 0], NULL,
                                             &table[0, 0], c3u, lanes + LANES_WORK * BL, c, &L, paper, True)
            _lanes_store(&out[n * BL, 0], lanes + OUT * BL, 10, 10, BL)
        if done < N:
            not_finite += not _all_finite(&x[done, 0, 0, 0], (N - done) * 1024)
            if paper:
                _c3_transpose_weights(c3wt, &params[L.c3w], &table[0, 0])
        if rest_threads == 1:      # one sample (or a few): no OpenMP region
            for n in range((N - done + group - 1) // group):
                first = done + n * group
                count = min(group, N - first)
                _forward(work, count, &params[0], &x[first, 0, 0, 0], NULL, c3wt, c3u, c, &L, paper)
                for s in range(count):
                    memcpy(&out[first + s, 0], work + s * WORK + OUT, 10 * sizeof(floating))
        elif rest_threads > 1:
            for n in prange((N - done + group - 1) // group, schedule="static", num_threads=rest_threads):
                tid = threadid()
                first = done + n * group
                count = min(group, N - first)
                _forward(work + tid * group * WORK, count, &params[0], &x[first, 0, 0, 0], NULL, c3wt, c3u, c,
                         &L, paper)
                for s in range(count):
                    memcpy(&out[first + s, 0], work + (tid * group + s) * WORK + OUT, 10 * sizeof(floating))
        free(memory)
    return not_finite == 0
