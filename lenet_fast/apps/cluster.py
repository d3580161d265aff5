"""Where ``sweep``, ``score`` and ``reproduce --scheduler`` run their tasks: ``--scheduler none`` in this
process, one task after another; ``local`` (the default) on a Dask ``LocalCluster`` of one single-threaded
worker process per core, started and closed here; an address (``tcp://HOST:PORT``) on an existing Dask
cluster, such as one started with ``dask scheduler`` and ``dask worker``.

Dask (``dask.distributed``) is the optional extra ``lenet_fast[dask]``, imported only when a cluster is
asked for. A task is a module-level function of lenet_fast and its arguments, so a worker needs the same
lenet_fast installed (checked when connecting). A worker that dies mid-task has its tasks rescheduled by
the Dask scheduler on the other workers (up to ``distributed.scheduler.allowed-failures`` deaths per task,
3 by default, then the task fails with KilledWorker); a task that raises is not retried (training and
scoring are deterministic: it would raise again).
"""
import argparse
import collections
import contextlib
import logging
import os
import re
import signal
import threading
import uuid
from typing import Any, NamedTuple, Optional

from .._config import _platform
from .._version import __version__
from .commands import UserError

EXTRA = "pip install 'lenet_fast[dask]'"
CONNECT_TIMEOUT = 10.0       # seconds to reach a scheduler given by its address, and for it to have a worker
_ADDRESS = re.compile(r"([a-z]+://)?[\w.\-\[\]:]+:\d+")


class Outcome(NamedTuple):
    """One finished task: its position in the list of calls, its value or its error, where it ran."""
    index: int
    value: Any
    error: Optional[str]         # "ValueError: ..." when the task raised (or its workers kept dying)
    worker: str


def scheduler_option(text):
    """argparse type of --scheduler: "none", "local" or a scheduler address (tcp://HOST:PORT, HOST:PORT)."""
    if text in ("none", "local") or _ADDRESS.fullmatch(text):
        return text
    raise argparse.ArgumentTypeError(f"must be local, none or a Dask scheduler address such as "
                                     f"tcp://127.0.0.1:8786, got {text!r}")


def positive_int(text):
    """argparse type of a count that must be at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_scheduler_option(parser, default="local", what="the training runs"):
    parser.add_argument(
        "--scheduler", type=scheduler_option, default=default, metavar="local|none|ADDRESS",
        help=f"where to run {what}: local = a Dask LocalCluster of one single-threaded worker per core"
             f"{' (the default)' if default == 'local' else ''}; none = one after another in this process "
             f"(no Dask needed); tcp://HOST:PORT = an existing Dask cluster (its workers need lenet_fast "
             f"{__version__} installed){'; not given: one after another here, as before' if default is None else ''}. "
             f"Needs {EXTRA} except with none")


def cores():
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:      # pragma: no cover (not Linux)
        return os.cpu_count() or 1


@contextlib.contextmanager
def executor(scheduler):
    """The executor of --scheduler, closed (with the LocalCluster it started) on leaving the block."""
    if scheduler == "none":
        yield SerialExecutor()
        return
    distributed = _import_distributed(scheduler)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_quiet_after_ctrl_c())      # first in, last out: also while the cluster closes
        if scheduler == "local":
            with _workers_ignore_ctrl_c():
                cluster = stack.enter_context(distributed.LocalCluster(
                    n_workers=cores(), threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR))   # (its HTTP server: /health, ...)
            client = stack.enter_context(distributed.Client(cluster))
            description = f"a Dask LocalCluster of {cores()} single-threaded worker processes"
        else:
            client = stack.enter_context(_connect(distributed, scheduler))
            description = f"the Dask cluster at {scheduler}"
        yield DaskExecutor(client, description)


@contextlib.contextmanager
def _quiet_after_ctrl_c():
    """After a Ctrl-C, drop the errors that Dask's event loop logs (through tornado) while the client stops: a
    KeyboardInterrupt that lands inside distributed's sync() can make its cancel callback fail with a
    NameError, logged with a traceback. The interrupt itself still reaches the caller as before."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    interrupted = threading.Event()
    previous = signal.getsignal(signal.SIGINT)

    def on_ctrl_c(signum, frame):
        interrupted.set()
        return (previous if callable(previous) else signal.default_int_handler)(signum, frame)

    def unless_interrupted(record):
        return not interrupted.is_set()

    logger = logging.getLogger("tornado.application")
    signal.signal(signal.SIGINT, on_ctrl_c)
    logger.addFilter(unless_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        logger.removeFilter(unless_interrupted)


@contextlib.contextmanager
def _workers_ignore_ctrl_c():
    """Ctrl-C ignored while the LocalCluster starts its worker processes, which inherit that: a Ctrl-C on the
    terminal then stops the client (which closes the cluster) without a traceback from every worker."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _import_distributed(scheduler):
    try:
        import distributed
    except ImportError:
        raise UserError(f"--scheduler {scheduler} needs Dask, which is not installed: {EXTRA} "
                        "(or --scheduler none: in this process, no Dask needed)") from None
    return distributed


def _connect(distributed, address):
    """A Client of the scheduler at `address` with at least one worker that runs this lenet_fast."""
    try:
        client = distributed.Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise UserError(f"cannot reach the Dask scheduler at {address} within {CONNECT_TIMEOUT:g} s ({exc}); "
                        "start one with `dask scheduler`, or use --scheduler local") from None
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        _check_workers(client, address)
    except BaseException as exc:
        client.close()
        if isinstance(exc, (OSError, TimeoutError)):
            raise UserError(f"the Dask scheduler at {address} has no worker after {CONNECT_TIMEOUT:g} s; "
                            f"start some with `dask worker {address}`") from None
        raise
    return client


def worker_build():
    """(lenet_fast version, compiled SIMD instruction set) of the process that runs this."""
    return __version__, _platform.compiled_isa()


def _check_workers(client, address):
    try:
        builds = client.run(worker_build)
    except Exception as exc:
        raise UserError(f"the workers of {address} cannot run lenet_fast ({type(exc).__name__}: {exc}); "
                        f"install lenet_fast {__version__} on every worker") from None
    versions = {build[0] for build in builds.values()}
    if versions != {__version__}:
        raise UserError(f"the workers of {address} run lenet_fast {', '.join(sorted(versions))}, this is "
                        f"{__version__}: install the same version on every worker")
    isas = {build[1] for build in builds.values()} - {_platform.compiled_isa()}
    if isas:
        logging.getLogger(__name__).warning(
            "note: some workers' kernels were built for %s, these for %s: their results agree with this "
            "machine's to rounding, not bit for bit", ", ".join(sorted(isas)), _platform.compiled_isa())


def _error(exc):
    return f"{type(exc).__name__}: {exc}"


def _failure(future):
    try:
        return _error(future.exception())
    except Exception as exc:          # a cancelled future has no exception: asking raises CancelledError
        return _error(exc)


class SerialExecutor:
    """The tasks in this process, one after another, in order."""
    description = "this process (--scheduler none)"
    slots = 1

    def share(self, value, broadcast=True):
        return value

    def as_completed(self, fn, calls):
        for index, args in enumerate(calls):
            try:
                value, error = fn(*args), None
            except Exception as exc:       # the run fails, the others go on (Ctrl-C is not an Exception)
                value, error = None, _error(exc)
            yield Outcome(index, value, error, "local")

    def in_order(self, fn, calls, window=None):
        for args in calls:
            yield fn(*args)


def _on_worker(fn, *args):
    """What a Dask task runs: `fn(*args)` and the address of the worker that ran it."""
    from distributed import get_worker
    return fn(*args), get_worker().address


class DaskExecutor:
    """The tasks on a Dask cluster through `client`; pending tasks are cancelled when the caller stops."""

    def __init__(self, client, description):
        self.client = client
        self.description = description
        self._token = uuid.uuid4().hex[:8]

    @property
    def slots(self):
        """The worker threads of the cluster, at least 1."""
        return max(1, sum(w["nthreads"] for w in self.client.scheduler_info()["workers"].values()))

    def share(self, value, broadcast=True):
        """A handle on `value` placed on the workers (every worker's copy with `broadcast`); a tuple or list
        stays one object."""
        return self.client.scatter([value], broadcast=broadcast, hash=False)[0]

    def _submit(self, fn, index, args):
        return self.client.submit(_on_worker, fn, *args, key=f"{fn.__name__}-{self._token}-{index}", pure=False)

    def as_completed(self, fn, calls):
        """Outcome of every call, in the order they finish."""
        import distributed
        futures = [self._submit(fn, i, args) for i, args in enumerate(calls)]
        index = {future.key: i for i, future in enumerate(futures)}
        try:
            for future in distributed.as_completed(futures):
                if future.status == "finished":
                    value, worker = future.result()
                    yield Outcome(index[future.key], value, None, worker)
                else:                 # an error, or cancelled (by the scheduler or another client)
                    yield Outcome(index[future.key], None, _failure(future), "")
        finally:
            self.client.cancel([future for future in futures if not future.done()])

    def in_order(self, fn, calls, window=None):
        """The values of the calls in order, with at most `window` tasks in flight (default: twice the
        worker threads): memory stays flat however many calls there are. The first error is raised."""
        window = window or 2 * self.slots
        pending = collections.deque()
        try:
            for i, args in enumerate(calls):
                pending.append(self._submit(fn, i, args))
                if len(pending) >= window:
                    yield pending.popleft().result()[0]
            while pending:
                yield pending.popleft().result()[0]
        finally:
            if pending:
                self.client.cancel(list(pending))


def map_seeds(scheduler, fn, shared, seeds, *rest):
    """``fn(shared, seed, *rest)`` for every seed on --scheduler, yielded as they finish (`shared` sent to
    each worker once); a failed run raises UserError naming its seed."""
    with executor(scheduler) as pool:
        handle = pool.share(shared)
        for outcome in pool.as_completed(fn, [(handle, seed, *rest) for seed in seeds]):
            if outcome.error is not None:
                raise UserError(f"the run of seed {seeds[outcome.index]} failed: {outcome.error}")
            yield outcome.value
