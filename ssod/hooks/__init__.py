"""Training hooks: the orchestration layer of a run (EMA teacher, teacher/student evaluation, CrS
resampling, pseudo-label quality, rank consistency, per-class logging).

They drive datasets, models and apis during training, so they sit above those packages, not
among the utilities they use. Importing this package registers them with mmcv's HOOKS.
"""
from ssod.hooks import (  # noqa: F401
    evaluation, mean_teacher, pseudo_quality, rank_consistency, resampling, tensorboard_logger)
