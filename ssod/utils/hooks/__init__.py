from ssod.utils.hooks import evaluation  # noqa: F401
