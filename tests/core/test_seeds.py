"""Seeded random inits are the same whatever else the process's threads are doing."""

import threading

import torch
from torch import nn

from v2a.core.seeds import seeded_global_rng


def _init(seed: int) -> torch.Tensor:
    with seeded_global_rng(seed):
        # Many small draws: a thread switch lands between them, as in a real network's init.
        return torch.cat([nn.Linear(16, 16).weight.detach().flatten() for _ in range(300)])


def test_inits_seeded_in_threads_at_once_equal_the_inits_made_alone():
    alone = {seed: _init(seed) for seed in (1, 2, 3)}
    for _ in range(3):
        barrier, got = threading.Barrier(3), {}

        def build(seed):
            barrier.wait()
            got[seed] = _init(seed)

        threads = [threading.Thread(target=build, args=(s,)) for s in alone]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert all(torch.equal(got[s], alone[s]) for s in alone)


def test_the_callers_global_rng_state_is_left_as_it_was():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _init(7)
    assert torch.equal(torch.rand(3), expected)
