# The SoftTeacher / CI-SSOD schedule for 8 GPUs (spec F): SGD lr 0.01, no gradient clipping,
# 500 linear warm-up iterations, x0.1 at 120k and 160k of 180k iterations, mixed precision with
# a dynamic loss scale (CUDA only: the trainer refuses fp16 on CPU; drop `fp16` to run there).
optimizer = dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=0.0001)
optimizer_config = dict(grad_clip=None)
lr_config = dict(policy="step", warmup="linear", warmup_iters=500, warmup_ratio=0.001, step=[120000, 160000])
runner = dict(type="IterBasedRunner", max_iters=180000)
fp16 = dict(loss_scale="dynamic")
