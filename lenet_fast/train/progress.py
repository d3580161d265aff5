"""What a training run records and shows: the History of its passes, a line per pass, a progress bar,
a JSON log, and Ctrl-C turned into a clean stop."""
import json
import signal
import sys
import threading


class History:
    """Per-epoch records of a training run. ``history["val_error"]`` is the column as a list,
    ``history[-1]`` the last record (a dict), ``history.records`` all of them."""

    def __init__(self, records=()):
        self.records = [dict(r) for r in records]

    def __getitem__(self, key):
        if isinstance(key, str):
            return [r.get(key) for r in self.records]
        return self.records[key]

    def __len__(self):
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __repr__(self):
        return f"History({len(self)} epochs)"


def format_record(record, epochs):
    """One line per pass: loss, training and validation error, seconds, images/s (and SDLM's eps range)."""
    width = len(str(epochs))
    line = (f"epoch {record['epoch']:>{width}}/{epochs}  loss {record['loss']:.4f}  "
            f"train error {100 * record['train_error']:5.2f}%")
    if "val_error" in record:
        line += f"  val error {100 * record['val_error']:5.2f}%"
    line += f"  {record['seconds']:6.1f} s  {record['images_per_second']:8,.0f} img/s"
    if "eps" in record:
        low, *_, high = record["eps"]["all"]
        line += f"  eps {low:.1e}..{high:.1e}"
    return line


class StopOnInterrupt:
    """While active (main thread only), the first Ctrl-C sets `requested` instead of raising, so the
    loop can stop at a consistent point; a second Ctrl-C interrupts at once."""

    def __enter__(self):
        self.requested = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


class ProgressBar:
    """The pass's progress bar on stderr (tqdm): the pass, the images done, the rate and the time left.
    `update` after every chunk of a pass, `clear` at its end (the bar disappears)."""

    def __init__(self):
        self._bar, self._epoch = None, None

    def update(self, epoch, epochs, done, total, seconds=None):
        """`done` of `total` images of pass `epoch` (from 0) are trained. tqdm times the pass itself,
        from this pass's first update on (`seconds`, the trainer's own clock, is not needed)."""
        if self._bar is None or self._epoch != epoch:
            from tqdm import tqdm       # here, not at the top: only a terminal shows the bar
            self.clear()
            self._bar = tqdm(total=total, initial=done, desc=f"epoch {epoch + 1}/{epochs}", unit=" img",
                             unit_scale=True, leave=False, file=sys.stderr, mininterval=0.1, smoothing=0,
                             dynamic_ncols=True)
            self._epoch = epoch
        self._bar.update(done - self._bar.n)

    def clear(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def json_log(path):
    """A callback that appends each pass's record to `path` as one JSON line."""
    def log(trainer, record):
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    return log
