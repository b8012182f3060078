from ssod.datasets.pipelines import semi_pipelines, transforms  # noqa: F401
