"""The task runner of the stage flows, chosen by the pipeline config's `runner:` section.

thread (default): a thread pool in the flow's process; tasks share one copy of each model.
dask: `prefect-dask` on an existing cluster (`address`), on a LocalCluster (`cluster_kwargs`), or on
one worker process per GPU of this node (`gpus`), started once for the whole pipeline run so the
stages do not each pay for starting workers (and loading models).
ray: `prefect-ray`, on a local Ray instance or an existing cluster (`address`), started once per run;
model tasks on CUDA ask Ray for a GPU each.

GPU workers are pinned by `CUDA_VISIBLE_DEVICES`, set per worker process (v2a.core.devices),
rather than by dask-cuda's LocalCUDACluster: the same code then runs on a machine without a GPU
(the tests start it on CPU), and no RAPIDS package pins the Dask version prefect-dask needs.
Workers started by `dask cuda worker` on other nodes are pinned the same way and need nothing else.
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
        if cfg.gpus is not None:
            return DaskTaskRunner(cluster_class=gpu_cluster, cluster_kwargs={"gpus": cfg.gpu_ids(),
                                                                             **cfg.cluster_kwargs})
        return DaskTaskRunner(cluster_kwargs=local_cluster_kwargs(cfg))
    if cfg.kind == "ray":
        try:
            from prefect_ray import RayTaskRunner
        except ImportError as err:
            raise ConfigError("runner.kind = 'ray' needs the package prefect-ray: "
                              ".venv/bin/pip install 'prefect-ray==0.6.0'") from err
        return RayTaskRunner(address=cfg.address, init_kwargs=dict(cfg.init_kwargs) or None)
    raise ConfigError(f"runner.kind = {cfg.kind!r}; accepted: thread, dask, ray")


def _workers_may_start_processes() -> None:
    # Dask starts its workers as daemonic processes, which may not start children; the embed stage's
    # decode pool is processes from 4 workers on. Read by each nanny whenever it (re)starts a worker.
    import dask

    dask.config.set({"distributed.worker.daemon": False})


def worker_threads_env() -> dict[str, str]:
    """What a worker process started here runs model work with: this process's thread count (same bits on
    every runner of this node; v2a.core.threads)."""
    from v2a.core.threads import WORKER_THREADS_ENV, machine_threads

    return {WORKER_THREADS_ENV: str(machine_threads())}


def local_cluster_kwargs(cfg: RunnerConfig) -> dict:
    # No dashboard unless asked for: its port may be taken, and a batch run has no one watching it.
    _workers_may_start_processes()
    kwargs = {"dashboard_address": None, **cfg.cluster_kwargs}
    return {**kwargs, "env": {**worker_threads_env(), **dict(kwargs.get("env") or {})}}


def gpu_cluster(gpus: list[str], threads_per_worker: int = 1, memory_limit="auto", dashboard_address=None,
                asynchronous: bool = False):
    """A Dask cluster on this node with one worker process per GPU id, each started with
    CUDA_VISIBLE_DEVICES naming its GPU: inside it `cuda` is that GPU, and its models load once."""
    from distributed import Nanny, Scheduler, SpecCluster

    from v2a.core.devices import worker_env

    _workers_may_start_processes()
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard": dashboard_address is not None,
                                               "dashboard_address": dashboard_address}}
    workers = {f"gpu-{gpu}": {"cls": Nanny, "options": {"nthreads": threads_per_worker,
                                                        "env": {**worker_threads_env(), **worker_env(gpu)},
                                                        "memory_limit": memory_limit, "host": "127.0.0.1"}}
               for gpu in gpus}
    return SpecCluster(workers=workers, scheduler=scheduler, asynchronous=asynchronous, name="v2a-gpus")


def prepare_model_process() -> None:
    """Import the model libraries in this process before any task thread starts (v2a.runtime.imports)."""
    from v2a.runtime.imports import import_model_libraries

    import_model_libraries()


def _model_imports_plugin():
    from distributed import WorkerPlugin

    class ModelImports(WorkerPlugin):
        """Each Dask worker imports the model libraries when it starts, before it runs a task (and again
        in a worker the nanny restarts)."""

        name = "v2a-model-imports"

        def setup(self, worker):
            from v2a.runtime.imports import worker_setup

            worker_setup()

    return ModelImports()


def register_worker_imports(address: str) -> None:
    """Every worker of the Dask cluster at `address`, present and future, imports the model libraries at start."""
    from distributed import Client

    with Client(address, set_as_default=False) as client:
        client.register_plugin(_model_imports_plugin())


@contextmanager
def task_runners(cfg: RunnerConfig):
    """Yield a factory of task runners (a flow needs a runner of its own) for one pipeline run; a local
    cluster or Ray instance is started once here and shared by every stage."""
    if cfg.kind == "dask" and not cfg.address:
        if cfg.gpus is not None:
            cluster = gpu_cluster(cfg.gpu_ids(), **cfg.cluster_kwargs)
        else:
            from distributed import LocalCluster

            cluster = LocalCluster(**local_cluster_kwargs(cfg))
        with cluster:
            register_worker_imports(cluster.scheduler_address)
            yield lambda: make_task_runner(cfg, address=cluster.scheduler_address)
    elif cfg.kind == "dask":
        register_worker_imports(cfg.address)
        yield lambda: make_task_runner(cfg)
    elif cfg.kind == "ray":
        with ray_instance(cfg):
            yield lambda: make_task_runner(cfg)
    else:
        yield lambda: make_task_runner(cfg)


@contextmanager
def ray_instance(cfg: RunnerConfig):
    """Ray connected (or a local instance started) for the whole run: each stage's RayTaskRunner finds
    it initialised and uses it instead of starting and stopping one per stage."""
    make_task_runner(cfg)  # the missing-package error, before anything starts
    import ray

    if ray.is_initialized():
        yield
        return
    kwargs = {"namespace": "prefect", **cfg.init_kwargs}
    # Each Ray worker process imports the model libraries when it starts, before it runs a task.
    runtime_env = dict(kwargs.get("runtime_env") or {})
    runtime_env.setdefault("worker_process_setup_hook", "v2a.runtime.imports.worker_setup")
    runtime_env["env_vars"] = {**worker_threads_env(), **dict(runtime_env.get("env_vars") or {})}
    ray.init(*([cfg.address] if cfg.address else []), **{**kwargs, "runtime_env": runtime_env})
    try:
        yield
    finally:
        ray.shutdown()


@contextmanager
def model_resources(device: str | None):
    """Around the submission of model tasks: on Ray, each one on a CUDA device asks for a GPU of its own
    (Ray then sets its CUDA_VISIBLE_DEVICES); Dask workers are pinned to their GPU when started instead."""
    from prefect.context import FlowRunContext

    from tasks.operations import uses_gpu

    context = FlowRunContext.get()
    runner = getattr(context, "task_runner", None)
    if uses_gpu(device) and type(runner).__module__.startswith("prefect_ray"):
        from prefect_ray.context import remote_options

        with remote_options(num_gpus=1):
            yield
    else:
        yield


@contextmanager
def stage_options(cfg: PipelineConfig, run_id: str | None = None):
    """Yield `stage(flow)`: the flow with the run's task runner and cached-result storage, its runs
    named after the stage and the pipeline's run id (`embed-run-1a2b3c4d5e`)."""
    from flows.naming import run_name
    from tasks.caching import result_storage

    storage = result_storage(cfg.cache_location)
    with task_runners(cfg.runner) as new_runner:
        yield lambda f: _traced(f.name, f.with_options(task_runner=new_runner(), result_storage=storage,
                                                       flow_run_name=run_name(f.name, run_id) if run_id
                                                       else f.flow_run_name))


def _traced(stage: str, flow):
    """The stage flow, its run written to the trace as `stage:<name>` (v2a.runtime.trace; nothing when off)."""
    from v2a.runtime import trace

    def run(*args, **kwargs):
        with trace.span("stage", stage):
            return flow(*args, **kwargs)

    return run
