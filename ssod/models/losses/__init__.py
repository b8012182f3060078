from ssod.models.losses import focal, gbr  # noqa: F401
