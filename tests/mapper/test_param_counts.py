"""Trainable parameters at width 512 match every entry of the paper's tables within 2 %."""

import pytest

from v2a.mapper import build_mapper, count_trainable_params

REG_MLP = {(1, 1): 0.53, (1, 2): 1.05, (1, 4): 2.10, (2, 1): 0.79, (2, 2): 2.10, (2, 4): 6.30,
           (4, 1): 1.32, (4, 2): 4.21, (4, 4): 14.71}
DIFF_MLP = {(1, 1): 1.56, (1, 2): 2.61, (1, 4): 4.71, (2, 1): 1.83, (2, 2): 3.67, (2, 4): 8.91,
            (4, 1): 2.35, (4, 2): 5.77, (4, 4): 17.32}
TRANSFORMER = {3: (12.31, 12.82), 6: (24.31, 24.82), 8: (32.31, 32.83), 12: (48.32, 48.83)}

CASES = (
    [("regression", "mlp", d, e, m) for (d, e), m in REG_MLP.items()]
    + [("diffusion", "mlp", d, e, m) for (d, e), m in DIFF_MLP.items()]
    + [("regression", "transformer", d, None, r) for d, (r, _) in TRANSFORMER.items()]
    + [("diffusion", "transformer", d, None, f) for d, (_, f) in TRANSFORMER.items()]
)


@pytest.mark.parametrize("kind,arch,depth,expansion,paper_millions", CASES,
                         ids=[f"{k[:4]}-{a}-D{d}" + (f"xE{e}" if e else "") for k, a, d, e, _ in CASES])
def test_trainable_params_match_paper_table(kind, arch, depth, expansion, paper_millions):
    net = build_mapper(kind, arch, dim=512, depth=depth, expansion=expansion)
    millions = count_trainable_params(net) / 1e6
    assert abs(millions - paper_millions) / paper_millions < 0.02, f"{millions:.3f} M vs paper {paper_millions} M"


def test_best_model_has_48_83_million_params():
    net = build_mapper("diffusion", "transformer")
    assert abs(count_trainable_params(net) / 1e6 - 48.83) / 48.83 < 0.02
