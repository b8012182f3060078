from ssod.datasets import builder, class_maps, coco_split, lvis, objects365, pipelines, samplers, semi_dataset  # noqa: F401
