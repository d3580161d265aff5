"""Training: the Trainer, the optimisers (SDLM, SGD), distortions, checkpoints and progress."""
from .distortions import Distortions, affine_matrices, affine_warp
from .optimizers import MODERN_SGD, OPTIMIZERS, PAPER_ETA_SCHEDULE, SDLM, SGD, make_optimizer
from .progress import History, format_record, json_log
from .recipes import RECIPES, Recipe
from .trainer import CHUNK, Trainer, TrainingDivergedError
from .checkpoints import CHECKPOINT_FORMAT, CHECKPOINT_VERSION

__all__ = ["Trainer", "TrainingDivergedError", "History", "SDLM", "SGD", "make_optimizer", "OPTIMIZERS",
           "MODERN_SGD", "PAPER_ETA_SCHEDULE", "Distortions", "affine_matrices", "affine_warp", "format_record",
           "json_log", "CHUNK", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "RECIPES", "Recipe"]
