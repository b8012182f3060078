from ssod.datasets.samplers import semi_balance  # noqa: F401
