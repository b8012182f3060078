from ssod.utils.hooks import (  # noqa: F401
    evaluation, mean_teacher, pseudo_quality, rank_consistency, resampling, tensorboard_logger)
