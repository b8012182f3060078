from ssod.utils.hooks import evaluation, mean_teacher  # noqa: F401
