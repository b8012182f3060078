from ssod.datasets import builder, coco_split, pipelines, samplers, semi_dataset  # noqa: F401
