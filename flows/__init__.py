"""The Prefect flows. Every deployment's entrypoint is a module of this package, so a worker's flow run
process passes here first: there, user errors are logged without their tracebacks (flows/errors.py)."""

from flows.errors import quiet_worker_tracebacks

quiet_worker_tracebacks()
