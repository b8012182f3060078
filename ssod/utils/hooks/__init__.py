from ssod.utils.hooks import evaluation, mean_teacher, resampling, tensorboard_logger  # noqa: F401
