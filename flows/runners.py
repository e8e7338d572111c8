"""The task runner of the stage flows, chosen by the pipeline config's `runner:` section.

thread (default): a thread pool in the flow's process; tasks share one copy of each model.
dask: `prefect-dask` on an existing cluster (`address`) or on a LocalCluster started once for the
whole pipeline run (`cluster_kwargs`), so the stages do not each pay for starting workers.
ray: `prefect-ray`, an optional extra, imported only when asked for.
"""

from __future__ import annotations

from contextlib import contextmanager

from v2a.config import DEFAULT_THREAD_WORKERS, ConfigError, PipelineConfig, RunnerConfig


def bounded_thread_runner(max_workers: int | None = None):
    """The stage flows' default runner: a thread pool of DEFAULT_THREAD_WORKERS, not Prefect's unbounded one."""
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=max_workers or DEFAULT_THREAD_WORKERS)


def make_task_runner(cfg: RunnerConfig, address: str | None = None):
    if cfg.kind == "thread":
        return bounded_thread_runner(cfg.max_workers)
    if cfg.kind == "dask":
        from prefect_dask import DaskTaskRunner

        address = address or cfg.address
        if address:
            return DaskTaskRunner(address=address)
        return DaskTaskRunner(cluster_kwargs=local_cluster_kwargs(cfg))
    if cfg.kind == "ray":
        try:
            from prefect_ray import RayTaskRunner
        except ImportError as err:
            raise ConfigError("runner.kind = 'ray' needs the optional package prefect-ray: "
                              ".venv/bin/pip install 'prefect-ray==0.6.0'") from err
        return RayTaskRunner(address=cfg.address, init_kwargs=dict(cfg.init_kwargs) or None)
    raise ConfigError(f"runner.kind = {cfg.kind!r}; accepted: thread, dask, ray")


def local_cluster_kwargs(cfg: RunnerConfig) -> dict:
    # No dashboard unless asked for: its port may be taken, and a batch run has no one watching it.
    return {"dashboard_address": None, **cfg.cluster_kwargs}


@contextmanager
def task_runners(cfg: RunnerConfig):
    """Yield a factory of task runners (a flow needs a runner of its own) for one pipeline run."""
    if cfg.kind == "dask" and not cfg.address:
        from distributed import LocalCluster

        with LocalCluster(**local_cluster_kwargs(cfg)) as cluster:
            yield lambda: make_task_runner(cfg, address=cluster.scheduler_address)
    else:
        yield lambda: make_task_runner(cfg)


@contextmanager
def stage_options(cfg: PipelineConfig, run_id: str | None = None):
    """Yield `stage(flow)`: the flow with the run's task runner and cached-result storage, its runs
    named after the stage and the pipeline's run id (`embed-run-1a2b3c4d5e`)."""
    from flows.naming import run_name
    from tasks.caching import result_storage

    storage = result_storage(cfg.cache_location)
    with task_runners(cfg.runner) as new_runner:
        yield lambda f: f.with_options(task_runner=new_runner(), result_storage=storage,
                                       flow_run_name=run_name(f.name, run_id) if run_id else f.flow_run_name)
