"""LeNet5Classifier: LeNet-5 (``lenet_fast.LeNet5``) as a scikit-learn classifier.

Needs scikit-learn: ``pip install 'lenet_fast[sklearn]'``. The classifier works in ``Pipeline``,
``cross_val_score``, ``GridSearchCV``, ``clone`` and pickle like any scikit-learn estimator; it takes
images of digits, not arbitrary features (see ``LeNet5Classifier`` for the accepted X).
"""
import numpy as np

try:
    from scipy import sparse
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, column_or_1d
except ImportError as exc:
    raise ImportError("lenet_fast.sklearn needs scikit-learn, which is not installed: "
                      "pip install 'lenet_fast[sklearn]'") from exc

from ._checks import finite_number, integer
from .model import LeNet5
from .nn.constants import INPUT_BACKGROUND, INPUT_FOREGROUND
from .train import History, Trainer

N_OUTPUTS = 10
SIDES = {784: 28, 1024: 32}        # pixels per image -> side of the square image
ACCEPTED = ("X must hold one image of a digit per sample, of shape (n_samples, 784) or "
            "(n_samples, 28, 28) for 28x28 pixels, or (n_samples, 1024) or (n_samples, 32, 32) for "
            "32x32 pixels; uint8 or integer grey levels 0..255, or float pixels in [0, 1]")


class LeNet5Classifier(ClassifierMixin, BaseEstimator):
    """LeNet-5 (LeCun et al. 1998) as a scikit-learn classifier of images of digits.

    X holds one image per sample, ink bright on a dark background (MNIST's convention):
    ``(n_samples, 784)`` or ``(n_samples, 28, 28)`` (28x28 pixels, padded by 2 background pixels to the
    network's 32x32, as ``lenet_fast.preprocess`` does) or ``(n_samples, 1024)`` or
    ``(n_samples, 32, 32)`` (32x32 pixels, not padded); flat rows are images in row-major order. Every
    X is pixels, never the network's own input (use ``lenet_fast.LeNet5`` for that): uint8 (or any
    integer dtype) are grey levels 0..255, 0 = background; floats are the same grey levels divided by
    255, in [0, 1] (values outside raise a ValueError). Both map linearly to the network's input
    range, p -> -0.1 + 1.275 p (p in [0, 1]), as ``lenet_fast.preprocess`` does, so ``X`` and
    ``X / 255`` give the same model up to rounding. Any other shape, dtype or range is a ValueError
    (object arrays that are not numbers: a TypeError).

    The labels ``y`` may be any sortable values (strings too); the i-th class of ``classes_`` (sorted)
    is the network's output i. LeNet-5 has 10 outputs, so at most 10 classes; with fewer, the unused
    outputs are never a target and are ignored by predict, predict_proba and decision_function.

    Parameters
    ----------
    variant : {"paper", "modern"}, default="paper"
        The network (``lenet_fast.LeNet5``): the paper's tanh/subsampling/RBF LeNet-5, or ReLU,
        max-pool and a softmax output.
    epochs : int, default=20
        Passes over the training data in ``fit`` (fewer with early stopping).
    optimizer : {"sdlm", "sgd"}, an optimizer object or None, default=None
        None: the paper's SDLM for "paper", SGD with momentum for "modern" (``lenet_fast.train``).
    learning_rate, momentum, weight_decay : float or None, default=None
        The optimizer's hyperparameters (None: its default; SDLM takes only learning_rate, the eta
        of its first passes, the schedule being scaled to it).
    batch_size : int or None, default=None
        Samples per update; None: 1 for SDLM (the paper), 64 for SGD.
    distortions : bool or lenet_fast.train.Distortions, default=False
        Random affine distortions of every presented training image.
    criterion : {"mse", "map", "cross_entropy"} or None, default=None
        Training loss; None: "mse" (Eq. 8) for "paper", "cross_entropy" for "modern".
    init : {"paper", "paper_sqrt", "pytorch"} or None, default=None
        The initial weights' rule (None: the variant's default).
    dtype : {"float32", "float64"}, default="float32"
        Precision of the network.
    validation_fraction : float in (0, 1) or None, default=None
        None: ``fit`` trains on all of X. A float: that fraction of X (a random subset drawn from
        `seed`) is held out, the validation error is measured after every pass, training stops when it
        has not gone below its best for `n_iter_no_change` passes, and the weights of the best pass are
        kept (early stopping). ``partial_fit`` never holds data out.
    n_iter_no_change : int, default=5
        Patience of the early stopping, in passes.
    seed : int, default=0
        Seeds the initial weights, the presentation order, SDLM's curvature subsets, the distortions
        and the validation split; with the same n_threads, fit gives bit-identical weights.
    n_threads : int or None, default=None
        OpenMP threads of the kernels; None follows OMP_NUM_THREADS / threadpoolctl / all cores.
    verbose : {0, 1, 2}, default=0
        1: a line per pass; 2: also a progress bar on a terminal.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted; ``classes_[i]`` is the network's output i.
    n_features_in_ : int
        Pixels per image seen in fit: 784 (28x28) or 1024 (32x32). Later calls need the same.
    model_ : lenet_fast.LeNet5
        The trained network.
    history_ : lenet_fast.train.History
        One record per pass (fit's, then partial_fit's): loss, train_error, seconds, images_per_second,
        with early stopping val_loss and val_error too.
    loss_curve_ : list of float
        The mean training loss of every pass.
    validation_scores_ : list of float or None
        With early stopping, the validation accuracy after every pass of fit; None otherwise.
    best_validation_score_ : float or None
        The best of validation_scores_ (the kept weights'); None without early stopping.
    n_iter_ : int
        Passes run so far.

    Notes
    -----
    ``decision_function`` is larger for more likely classes: minus the RBF penalties ("paper"; lower
    penalty = better match) or the logits ("modern"), of shape (n_samples, n_classes), or for two
    classes the score of ``classes_[1]`` minus that of ``classes_[0]``.

    ``predict_proba`` is the softmax of those scores over the classes. For "paper" this is the
    posterior of the paper's MAP criterion (Eq. 9), ``exp(-y_i) / (exp(-j) + sum_k exp(-y_k))`` with
    the rubbish class j removed and renormalised over the classes (given that the image is one of
    them). The default MSE criterion does not calibrate these probabilities (they are close to 0 and 1);
    ``criterion="map"`` trains this posterior itself. For "modern" it is the softmax the cross-entropy
    loss trains.

    ``partial_fit`` runs one pass over the given samples; its k-th pass uses the learning rate of pass
    min(k, epochs - 1) of fit's schedule, and the optimizer's state (SGD's momentum) starts afresh at
    every call.
    """

    def __init__(self, variant="paper", epochs=20, optimizer=None, learning_rate=None, momentum=None,
                 weight_decay=None, batch_size=None, distortions=False, criterion=None, init=None,
                 dtype="float32", validation_fraction=None, n_iter_no_change=5, seed=0, n_threads=None,
                 verbose=0):
        self.variant = variant
        self.epochs = epochs
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.distortions = distortions
        self.criterion = criterion
        self.init = init
        self.dtype = dtype
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.seed = seed
        self.n_threads = n_threads
        self.verbose = verbose

    # --- training -----------------------------------------------------------------------------------

    def fit(self, X, y):
        """Train a new network on (X, y) for `epochs` passes (or until early stopping); returns self."""
        y = _check_y(y)
        model = LeNet5(self.variant, self.dtype, seed=self.seed, n_threads=self.n_threads,
                       criterion=self.criterion, init=self.init)
        x, n_features = _network_input(X, model.dtype)
        _check_lengths(x, y)
        classes, y = np.unique(y, return_inverse=True)
        _check_classes(classes)
        validation_data, stopper = None, None
        if self.validation_fraction is not None:
            fraction = finite_number("validation_fraction", self.validation_fraction, above=0, below=1)
            n_val = max(1, int(round(fraction * len(x))))
            if n_val >= len(x):
                raise ValueError(f"validation_fraction={fraction} of {len(x)} samples leaves none to train on")
            order = np.random.default_rng(integer("seed", self.seed, at_least=0)).permutation(len(x))
            validation_data = (x[order[:n_val]], y[order[:n_val]])
            x, y = x[order[n_val:]], y[order[n_val:]]
            stopper = _EarlyStopping(integer("n_iter_no_change", self.n_iter_no_change, at_least=1))
        history = self._trainer(model, [stopper] if stopper else []).fit(x, y, validation_data=validation_data)
        if stopper:
            model.flat_parameters[...] = stopper.best_weights
        self.classes_, self.n_features_in_, self.model_ = classes, n_features, model
        self.history_ = History(history.records)
        self.loss_curve_ = self.history_["loss"]
        self.n_iter_ = len(self.history_)
        self.validation_scores_ = [1.0 - e for e in self.history_["val_error"]] if stopper else None
        self.best_validation_score_ = 1.0 - stopper.best if stopper else None
        return self

    def partial_fit(self, X, y, classes=None):
        """One pass over (X, y), continuing the training (a new network at the first call, which
        needs `classes`: every label the classifier will see). Returns self."""
        y = _check_y(y)
        first = not hasattr(self, "model_")
        if first:
            if classes is None:
                raise ValueError("classes must be given at the first call to partial_fit: every label "
                                 "that the classifier will see, e.g. classes=np.unique(y_all)")
            classes = np.unique(column_or_1d(classes))
            _check_classes(classes)
            model = LeNet5(self.variant, self.dtype, seed=self.seed, n_threads=self.n_threads,
                           criterion=self.criterion, init=self.init)
        else:
            if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(f"classes={classes!r} differs from the classes of the first call, {self.classes_!r}")
            classes, model = self.classes_, self.model_
        x, n_features = _network_input(X, model.dtype)
        if not first:
            self._check_n_features(n_features)
        _check_lengths(x, y)
        unknown = np.setdiff1d(y, classes)
        if len(unknown):
            raise ValueError(f"y holds labels that are not in classes: {unknown[:5]!r}")
        trainer = self._trainer(model, [lambda trainer, record: False])      # one pass
        if first:
            self.classes_, self.n_features_in_, self.model_ = classes, n_features, model
            self.history_, self.loss_curve_, self.n_iter_ = History(), [], 0
            self.validation_scores_ = self.best_validation_score_ = None
        trainer.epoch = min(self.n_iter_, trainer.epochs - 1)      # the pass's place in the schedule
        record = dict(trainer.fit(x, np.searchsorted(classes, y))[-1], epoch=self.n_iter_ + 1)
        self.history_.records.append(record)
        self.loss_curve_.append(record["loss"])
        self.n_iter_ += 1
        return self

    def _trainer(self, model, callbacks):
        return Trainer(model, optimizer=self.optimizer, epochs=self.epochs, batch_size=self.batch_size,
                       learning_rate=self.learning_rate, momentum=self.momentum, weight_decay=self.weight_decay,
                       distortions=self.distortions, seed=self.seed, callbacks=callbacks, verbose=self.verbose)

    # --- prediction ---------------------------------------------------------------------------------

    def decision_function(self, X):
        """Scores, larger = more likely: (n_samples, n_classes), or (n_samples,) for two classes (the
        score of classes_[1] minus that of classes_[0]). See the class's Notes."""
        scores = self._scores(X)
        return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores

    def predict_proba(self, X):
        """(n_samples, n_classes) class probabilities: the softmax of the scores (see the Notes)."""
        return np.exp(self.predict_log_proba(X))

    def predict_log_proba(self, X):
        """The logarithm of predict_proba, computed stably."""
        scores = self._scores(X)
        scores -= scores.max(axis=1, keepdims=True)
        return scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))

    def predict(self, X):
        """(n_samples,) the most likely class of each image (the lowest penalty or largest logit)."""
        best = self._scores(X).argmax(axis=1)
        return self.classes_[best]

    def _scores(self, X):
        """(n_samples, n_classes) float64 scores of the used outputs, larger = more likely."""
        check_is_fitted(self, "model_")
        x, n_features = _network_input(X, self.model_.dtype)
        self._check_n_features(n_features)
        outputs = self.model_.forward(x)[:, :len(self.classes_)].astype(np.float64)
        return -outputs if self.model_.architecture.decision == "argmin" else outputs

    def _check_n_features(self, n_features):
        if n_features != self.n_features_in_:
            raise ValueError(f"X has {n_features} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input (images of the size seen in fit)")

    def __sklearn_tags__(self):          # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True        # pixels: negative values are rejected
        tags.input_tags.three_d_array = True        # (n_samples, 28, 28) and (n_samples, 32, 32)
        return tags

    # --- pickle: the network pickles itself (LeNet5.__getstate__); older pickles hold a dict ---

    def __setstate__(self, state):
        state = dict(state)
        saved = state.get("model_")
        if isinstance(saved, dict):
            model = LeNet5(saved["variant"], saved["dtype"], n_threads=saved["n_threads"],
                           criterion=saved["criterion"], map_j=saved["map_j"], init=saved["init"])
            model.flat_parameters[...] = saved["flat_parameters"]
            state["model_"] = model
        super().__setstate__(state)


class _EarlyStopping:
    """Trainer callback: keeps the weights of the pass with the lowest validation error and stops the
    training after `patience` passes without a lower one."""

    def __init__(self, patience):
        self.patience, self.best, self.best_weights, self.waited = patience, np.inf, None, 0

    def __call__(self, trainer, record):
        if record["val_error"] < self.best:
            self.best, self.best_weights, self.waited = record["val_error"], trainer.net.flat_parameters.copy(), 0
        else:
            self.waited += 1
        return self.waited < self.patience


def _network_input(X, dtype):
    """(x, pixels per image): X's images as uint8 (n, side, side) (LeNet5 preprocesses them) or as float
    network input (n, 1, 32, 32) of `dtype`, by the rules of LeNet5Classifier's docstring."""
    if sparse.issparse(X):
        raise ValueError(f"sparse X is not supported: {ACCEPTED}; pass X.toarray()")
    X = np.asarray(X)
    if X.dtype.kind == "O":
        X = X.astype(np.float64)        # numbers stored as objects; anything else is a TypeError
    if X.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {ACCEPTED}")
    if X.dtype.kind not in "uif":
        raise ValueError(f"{ACCEPTED}; got dtype {X.dtype}")
    if X.ndim == 2 and X.shape[1] == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is required.")
    if X.ndim == 0 or not len(X):
        raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required.")
    if X.ndim == 2 and X.shape[1] in SIDES:
        X = X.reshape(len(X), SIDES[X.shape[1]], SIDES[X.shape[1]])
    elif not (X.ndim == 3 and X.shape[1:] in ((28, 28), (32, 32))):
        features = f", {X.shape[1]} feature(s) per sample" if X.ndim == 2 else ""
        raise ValueError(f"{ACCEPTED}; got shape {X.shape}{features}")
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        raise ValueError("Input X contains NaN or infinity.")
    low, high = X.min(), X.max()
    top, what = (255, "integer pixels must be grey levels 0..255") if X.dtype.kind in "ui" else \
        (1, "float pixels must be grey levels / 255, in [0, 1] (pass 0..255 as uint8, or divide by 255)")
    if low < 0 or high > top:
        negative = "Negative values in data passed to LeNet5Classifier: " if low < 0 else ""
        raise ValueError(f"{negative}{what}; got values from {low} to {high}")
    side = X.shape[1]
    if X.dtype.kind in "ui":
        return X.astype(np.uint8, copy=False), side * side
    x = np.full((len(X), 1, 32, 32), INPUT_BACKGROUND, dtype=dtype)
    pad = (32 - side) // 2
    x[:, 0, pad:32 - pad, pad:32 - pad] = INPUT_BACKGROUND + (INPUT_FOREGROUND - INPUT_BACKGROUND) * X
    return x, side * side


def _check_y(y):
    y = column_or_1d(y, warn=True)
    check_classification_targets(y)
    return y


def _check_lengths(x, y):
    if len(x) != len(y):
        raise ValueError(f"X and y have different numbers of samples: {len(x)} and {len(y)}")


def _check_classes(classes):
    if len(classes) > N_OUTPUTS:
        raise ValueError(f"LeNet-5 has {N_OUTPUTS} outputs, so it can tell at most {N_OUTPUTS} classes apart; "
                         f"y holds {len(classes)}")
