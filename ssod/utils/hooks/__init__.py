from ssod.utils.hooks import evaluation, mean_teacher, resampling  # noqa: F401
