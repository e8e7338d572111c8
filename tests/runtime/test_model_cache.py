"""One build per key and process, whatever the number of threads asking at once."""

import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from v2a.runtime import trace
from v2a.runtime.model_cache import built_once


def _ask_at_once(func, args_list, threads_per_args=4):
    barrier = threading.Barrier(len(args_list) * threads_per_args)
    results, errors = [], []

    def ask(args):
        barrier.wait()
        try:
            results.append((args, func(*args)))
        except Exception as err:  # noqa: BLE001 - reported by the test
            errors.append(err)

    threads = [threading.Thread(target=ask, args=(a,)) for a in args_list for _ in range(threads_per_args)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return results


def test_threads_that_miss_the_cache_together_wait_for_one_build():
    builds = []

    @built_once(maxsize=4)
    def slow_model(name: str):
        builds.append(name)
        time.sleep(0.2)  # long enough for every other thread to arrive while the first builds
        return object()

    results = _ask_at_once(slow_model, [("generator",)], threads_per_args=8)
    assert builds == ["generator"]
    assert len({id(value) for _, value in results}) == 1  # every thread got the one instance


def test_different_keys_build_side_by_side_not_one_after_the_other():
    running, peak = [0], [0]
    guard = threading.Lock()

    @built_once(maxsize=4)
    def model(name: str):
        with guard:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.2)
        with guard:
            running[0] -= 1
        return name

    _ask_at_once(model, [("clip",), ("clap",)], threads_per_args=2)
    assert peak[0] == 2  # a per-key lock, not one lock for the whole cache


def test_a_default_argument_given_or_left_out_is_the_same_key():
    builds = []

    @built_once(maxsize=4)
    def model(profile: str, component: str, device: str = "cpu"):
        builds.append((profile, component, device))
        return object()

    assert model("tiny", "clip") is model("tiny", "clip", "cpu") is model("tiny", component="clip", device="cpu")
    assert builds == [("tiny", "clip", "cpu")]


def test_a_failed_build_is_not_cached_and_the_next_caller_builds_again():
    calls = []

    @built_once(maxsize=4)
    def flaky(name: str):
        calls.append(name)
        if len(calls) == 1:
            raise RuntimeError("disk hiccup")
        return name

    try:
        flaky("x")
    except RuntimeError:
        pass
    assert flaky("x") == "x" and len(calls) == 2


def test_the_least_recently_used_key_is_evicted_beyond_maxsize():
    @built_once(maxsize=2)
    def model(name: str):
        return object()

    a = model("a")
    model("b")
    model("a")
    model("c")  # evicts b, the least recently used
    assert model("a") is a and model.cache_info().currsize == 2
    model.cache_clear()
    assert model.cache_info().currsize == 0 and model("a") is not a


def test_a_fresh_process_builds_the_tiny_generator_once_from_four_threads_at_once(tmp_path):
    """The failure of the paper-shaped run, in small: a fresh process, no model library imported yet, four
    generation tasks asking for AudioLDM at the same moment."""
    script = textwrap.dedent("""
        import sys, threading
        from v2a.runtime.model_cache import get_model
        barrier = threading.Barrier(4)
        out, errors = [], []
        def ask():
            barrier.wait()
            try:
                out.append(id(get_model("tiny", "generator", "cpu")))
            except Exception as err:
                errors.append(repr(err))
        threads = [threading.Thread(target=ask) for _ in range(4)]
        [t.start() for t in threads]; [t.join() for t in threads]
        print("ERRORS", errors); print("INSTANCES", len(set(out)))
        sys.exit(1 if errors else 0)
    """)
    env = {**__import__("os").environ, trace.ENV: str(tmp_path / "trace")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "INSTANCES 1" in done.stdout
    (events,) = trace.read(str(tmp_path / "trace")).values()
    builds = [k for _, e, k in events if e == "build"]
    assert builds == ["tiny/generator/cpu"]
    # No flow imported the libraries first: the build did, under its lock, and the trace says so.
    assert [e for _, e, _ in events][:2] == ["late-import", "imports"]


def test_a_new_lazy_import_in_v2a_is_listed_among_the_libraries_imported_up_front():
    from v2a.runtime.imports import MODEL_LIBRARIES

    root = Path(__file__).resolve().parents[2] / "v2a"
    missing = []
    pattern = re.compile(r"^\s*from (diffusers|transformers|open_clip)(?:\.[\w.]+)? import \(?([\w, ]+)", re.M)
    for path in root.rglob("*.py"):
        for library, names in pattern.findall(path.read_text()):
            for name in (n.strip() for n in names.split(",")):
                if name and name not in MODEL_LIBRARIES[library]:
                    missing.append(f"{path.relative_to(root)}: {library}.{name}")
    assert not missing, missing
