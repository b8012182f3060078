from ssod.models import gbr_bbox_head, gbt, losses, multi_stream_detector, soft_teacher, soft_teacher_grs  # noqa: F401
