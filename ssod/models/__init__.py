from ssod.models import gbr_bbox_head, gbt, losses  # noqa: F401
