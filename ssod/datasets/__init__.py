from ssod.datasets import builder, pipelines, samplers, semi_dataset  # noqa: F401
