from ssod.utils import hooks  # noqa: F401
