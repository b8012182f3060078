from ssod.utils.hooks import (  # noqa: F401
    evaluation, mean_teacher, rank_consistency, resampling, tensorboard_logger)
