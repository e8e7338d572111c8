"""What a worker process keeps between tasks: the models it has loaded (`model_cache`)."""
