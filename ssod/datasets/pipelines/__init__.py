from ssod.datasets.pipelines import loading, semi_pipelines, transforms  # noqa: F401
