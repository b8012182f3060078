checkpoint_config = dict(by_epoch=False, interval=4000, max_keep_ckpts=20)
log_config = dict(interval=50, hooks=[dict(type="SummaryTextLoggerHook", by_epoch=False)])
log_level = "INFO"
load_from = None
resume_from = None
auto_resume = False
workflow = [("train", 1)]
opencv_num_threads = 0
mp_start_method = "fork"
