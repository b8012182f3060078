# A short CPU schedule for the toy dataset: 600 iterations, step decay at 450 and 550.
optimizer = dict(type="SGD", lr=0.02, momentum=0.9, weight_decay=0.0001)
optimizer_config = dict(grad_clip=dict(max_norm=10.0, norm_type=2))
lr_config = dict(policy="step", warmup="linear", warmup_iters=50, warmup_ratio=0.001, step=[450, 550])
runner = dict(type="IterBasedRunner", max_iters=600)
evaluation = dict(interval=600, metric="bbox")
