# Included by network.pyx: train_steps, and the workspace it works in (train_workspace_size).


cdef struct TrainMemory:
    # how train_steps runs a batch size on a number of threads, and where its arrays are in the
    # workspace: offsets in values from the workspace's first 64-byte boundary, each on a 64-byte boundary
    Py_ssize_t n_threads            # batch size 1: one (serial, no OpenMP region)
    Py_ssize_t group                # the per-sample path's samples at a time: LENET_GROUP or fewer
    bint in_lanes                   # batches of at least BL samples a thread go in blocks (_lanes_step)
    Py_ssize_t chunk                # blocks a chunk (each followed by its dense layers' weight gradients)
    Py_ssize_t lanes_size           # a thread's lanes work, then its partials (LANES_TRAIN + LANES_PARTIAL)
    # kept zero between batches: the threads' gradient rows, the batch's gradient, the per-sample
    # path's partials, and in each thread's lanes memory, its partials (the update and the folds zero them)
    Py_ssize_t rows, total, partial, lanes
    # scratch: the per-sample path's work rows, C3's weights transposed, a row of `dense` for each
    # sample of a chunk
    Py_ssize_t work, c3wt, dense
    Py_ssize_t size                 # in values, but for the up to 64 bytes before the first boundary


cdef inline Py_ssize_t _whole_lines(Py_ssize_t n, Py_ssize_t value_bytes) noexcept nogil:
    # n values rounded up to whole 64-byte cache lines
    cdef Py_ssize_t per_line = 64 // value_bytes
    return (n + per_line - 1) // per_line * per_line


cdef TrainMemory _train_memory(const Layout* L, Py_ssize_t batch_size, int n_threads, Py_ssize_t BL,
                               Py_ssize_t value_bytes) noexcept nogil:
    cdef TrainMemory m
    cdef Py_ssize_t at = 0, T
    m.n_threads = T = min(n_threads, batch_size)
    # samples go through in groups of up to LENET_GROUP consecutive ones, no more than a thread's share
    m.group = min(LENET_GROUP, (batch_size + T - 1) // T)
    m.in_lanes = batch_size >= BL * T
    m.lanes_size = _whole_lines((LANES_TRAIN + LANES_PARTIAL) * BL, value_bytes) if m.in_lanes else 0
    m.chunk = max(DENSE_SAMPLES // (BL * T), 1) * T if m.in_lanes else 0
    m.rows = at
    at += _whole_lines(T * L.size, value_bytes)
    m.total = at
    at += _whole_lines(L.size if batch_size > 1 else 1, value_bytes)
    m.partial = at
    at += _whole_lines(T * PARTIAL, value_bytes)
    m.lanes = at
    at += T * m.lanes_size
    m.work = at
    at += _whole_lines(T * m.group * WORK, value_bytes)
    m.c3wt = at
    at += _whole_lines(C3_WEIGHTS, value_bytes)
    m.dense = at
    at += _whole_lines(m.chunk * BL * DENSE_ROW, value_bytes)
    m.size = at
    return m


def train_workspace_size(NetworkLayout layout, Py_ssize_t batch_size, int n_threads, bint double):
    """The values (of the dtype, float64 with `double`) of train_steps's workspace for this batch size
    and thread count (float32: 3.0 MB on one thread, 4.8 MB on two, 0.4 MB at batch 1)."""
    cdef Py_ssize_t value = sizeof(double) if double else sizeof(float)
    cdef Py_ssize_t BL = _lanes(<double*>NULL) if double else _lanes(<float*>NULL)
    # and room to move up to the first 64-byte boundary
    return _train_memory(&layout.L, batch_size, n_threads, BL, value).size + 64 // value


def train_steps(floating[::1] params,                 # IN/OUT (P,) the flat parameters, updated
                floating[::1] velocity,               # IN/OUT (P,) with momentum, else empty
                const floating[::1] step,             # IN  (P,) per-parameter step sizes
                const floating[:, :, :, ::1] x,       # IN  (N, 1, 32, 32)
                const int64_t[::1] labels,            # IN  (N,) in 0..9
                const int64_t[::1] order,             # IN  (M,) in 0..N-1: the samples presented
                double[::1] losses,                   # OUT (M,) loss of each presented sample
                int64_t[::1] predictions,             # OUT (M,) its predicted class
                const unsigned char[:, ::1] table,    # IN  (6, 16) C3 connections
                const floating[:, ::1] centers,       # IN  (10, 84) RBF centres (paper), else unused
                floating[::1] workspace,              # IN/OUT train_workspace_size(...) values: zeros, or
                                                      # as the last call with these settings left it
                NetworkLayout layout, bint paper, bint argmin, int kind, double map_j, Py_ssize_t batch_size,
                double momentum, double weight_decay, int n_threads):
    cdef Layout L = layout.L
    cdef Py_ssize_t M = order.shape[0], b, start, B, n, s, t, size, first, blocks, done, count
    cdef Py_ssize_t BL = _lanes(<floating*>NULL)
    cdef int tid
    cdef double scale
    cdef floating mom = <floating>momentum, decay = <floating>weight_decay
    cdef floating* v = &velocity[0] if momentum != 0 else NULL
    cdef const floating* c = &centers[0, 0] if paper else NULL
    cdef TrainMemory m = _train_memory(&L, batch_size, n_threads, BL, sizeof(floating))
    if M == 0:
        return
    n_threads = m.n_threads
    cdef const int64_t[:, ::1] segments = layout.conv_segments
    cdef Step update
    update.params = &params[0]
    update.velocity = v
    update.step = &step[0]
    update.momentum = momentum
    update.decay = weight_decay
    # the workspace's arrays (network_kernels._train_workspace keeps it), from its first 64-byte boundary
    cdef floating* memory = _aligned(&workspace[0])
    cdef Py_ssize_t at = memory - &workspace[0]
    cdef floating[:, ::1] rows = np.asarray(workspace)[at + m.rows:at + m.rows + n_threads * L.size].reshape(
        n_threads, L.size)                                                  # per-thread gradients
    cdef floating* total = memory + m.total
    cdef floating* partial = memory + m.partial
    cdef floating* work = memory + m.work
    cdef floating* c3wt = memory + m.c3wt
    cdef floating* dense = memory + m.dense
    cdef floating* lanes = NULL
    with nogil:
        for b in range((M + batch_size - 1) // batch_size):
            start = b * batch_size
            B = min(batch_size, M - start)
            scale = 1.0 / B
            if not m.in_lanes or B % (BL * n_threads):       # for the per-sample path (_c3_forward)
                _c3_transpose_weights(c3wt, &params[L.c3w], &table[0, 0])
            if batch_size == 1:
                _group_step(&rows[0, 0], partial, work, 1, &params[0], &x[0, 0, 0, 0],
                            &order[start], &labels[0], &table[0, 0], c3wt, c, &L, paper, argmin, kind, map_j,
                            scale, &losses[start], &predictions[start], &update)
                _fold_partial(&rows[0, 0], partial, &table[0, 0], &L)
                for s in range(segments.shape[0]):
                    _update(&params[0], v, &rows[0, 0], &step[0], segments[s, 0], segments[s, 1], mom, decay)
                continue
            # whole blocks, as many for every thread, a chunk at a time (each followed by its dense
            # layers' weight gradients), then the rest in groups (a thread's share at most)
            blocks = B // (BL * n_threads) * n_threads if m.in_lanes else 0
            done = 0
            while done < blocks:
                count = min(m.chunk, blocks - done)
                for n in prange(count, schedule="static", num_threads=n_threads):
                    tid = threadid()
                    first = start + (done + n) * BL
                    lanes = memory + m.lanes + tid * m.lanes_size
                    _lanes_step(lanes + LANES_TRAIN * BL, lanes, work + tid * m.group * WORK,
                                dense + n * BL * DENSE_ROW, &params[0], &x[0, 0, 0, 0], &order[first], &labels[0],
                                &table[0, 0], c, &L, paper, argmin, kind, map_j, scale, &losses[first],
                                &predictions[first])
                for t in prange(n_threads, schedule="static", num_threads=n_threads):
                    _dense_gradients_share(total, dense, count * BL, t, n_threads, &L, paper)
                done = done + count
            start = start + blocks * BL
            B = B - blocks * BL
            size = min(m.group, (B + n_threads - 1) // n_threads)
            for n in prange((B + size - 1) // size if B else 0, schedule="static", num_threads=n_threads):
                tid = threadid()
                first = start + n * size
                _group_step(&rows[tid, 0], partial + tid * PARTIAL, work + tid * m.group * WORK,
                            min(size, start + B - first), &params[0], &x[0, 0, 0, 0], &order[first], &labels[0],
                            &table[0, 0], c3wt, c, &L, paper, argmin, kind, map_j, scale, &losses[first],
                            &predictions[first], NULL)
            for t in prange(n_threads, schedule="static", num_threads=n_threads):     # each its own row
                if B:
                    _fold_partial(&rows[t, 0], partial + t * PARTIAL, &table[0, 0], &L)
                if blocks:
                    _lanes_fold_all(&rows[t, 0], memory + m.lanes + t * m.lanes_size + LANES_TRAIN * BL, &L,
                                    paper)
            for t in prange(n_threads, schedule="static", num_threads=n_threads):
                _finish_share(&params[0], v, total, rows, &step[0], segments, t, n_threads, &L, paper, mom,
                              decay, B > 0)
