from ssod.datasets import (builder, class_maps, coco_split, crs_wrappers, lvis, objects365, pipelines,  # noqa: F401
                           samplers, semi_dataset)
