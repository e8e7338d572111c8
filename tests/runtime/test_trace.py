"""The trace a test or an operator reads a run's shape from."""

import threading

from v2a.runtime import trace


def test_nothing_is_written_unless_asked(tmp_path, monkeypatch):
    monkeypatch.delenv(trace.ENV, raising=False)
    trace.record("build", "x")
    with trace.span("generate", 0):
        pass
    assert not trace.enabled() and list(tmp_path.iterdir()) == []


def test_spans_from_several_threads_give_the_peak_concurrency(tmp_path, monkeypatch):
    monkeypatch.setenv(trace.ENV, str(tmp_path))
    inside = threading.Barrier(3)

    def shard(i):
        with trace.span("generate", i):
            inside.wait()  # three shards inside at once

    threads = [threading.Thread(target=shard, args=(i,)) for i in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    with trace.span("generate", 3):  # a fourth, alone
        pass
    with trace.span("evaluate", "fd"):
        pass
    events = trace.read(str(tmp_path))
    assert trace.peak_concurrency(events, "generate") == 3
    assert trace.peak_concurrency(events, "evaluate") == 1
    assert trace.peak_concurrency(events, "embed") == 0


def test_back_to_back_tasks_do_not_count_as_overlapping():
    events = {1: [(1.0, "start", "embed:0"), (2.0, "end", "embed:0"), (2.0, "start", "embed:1"), (3.0, "end", "embed:1")]}
    assert trace.peak_concurrency(events, "embed") == 1
