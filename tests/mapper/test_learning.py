"""Each mapper learns synthetic visual -> audio embedding pairs; diffusion keeps one-to-many.

Pairs come from K classes (visual and audio class centroids plus noise). Within a class the
visual and audio noise are independent, so the achievable retrieval is the class: a held-out
visual embedding should retrieve held-out audio of its own class (chance 1/K).
"""

import numpy as np
import pytest

from v2a.mapper import TrainConfig, load_mapper, train_mapper

from .conftest import SMALL, l2

FAST = dict(batch_size=128, lr=1e-3, weight_decay=0.0, num_timesteps=1000, sampling_steps=50, val_every=1000,
            val_sampling_steps=25)


def _train(name, train, held_out, out_dir, epochs):
    config = TrainConfig(mapper=name, epochs=epochs, **SMALL[name], **FAST)
    metrics = train_mapper(train[0], train[1], held_out[0], held_out[1], config, out_dir, progress=False)
    return metrics, load_mapper(out_dir)


def class_retrieval(pred, audio, classes):
    """Fraction of rows whose most similar held-out audio embedding is of the row's class."""
    nearest = np.argmax(pred @ audio.T, axis=1)
    return float(np.mean(classes[nearest] == classes))


@pytest.mark.parametrize("name", list(SMALL))
def test_mapper_retrieves_the_right_class_of_audio(name, class_pairs, tmp_path):
    train, held_out = class_pairs
    metrics, mapper = _train(name, train, held_out, tmp_path, epochs=15)
    pred = mapper.map(held_out[0])[:, 0]
    accuracy = class_retrieval(pred, held_out[1], held_out[2])
    chance = 1 / len(np.unique(train[2]))
    print(f"{name}: class R@1 {accuracy:.3f} (chance {chance:.3f}); pair R@1 {metrics['val_r1']:.3f} "
          f"R@10 {metrics['val_r10']:.3f} (chance {1 / len(pred):.3f} / {10 / len(pred):.3f}); "
          f"cosine {metrics['val_cosine']:.3f}")
    assert accuracy >= 3 * chance


@pytest.mark.parametrize("name", ["diff-mlp", "diff-transformer"])
def test_diffusion_samples_cover_both_audio_modes_of_a_class(name, two_mode_pairs, tmp_path):
    data, train, held_out = two_mode_pairs
    _, mapper = _train(name, train, held_out, tmp_path, epochs=40)
    samples = mapper.map(held_out[0], samples=16, seed=0)  # (64, 16, dim)
    modes = data.audio_modes  # (K, 2, dim)
    k = held_out[2]
    sims = np.einsum("nsd,kmd->nskm", samples, modes)
    best = sims.reshape(*sims.shape[:2], -1).argmax(-1)
    best_class, best_mode = best // 2, best % 2
    own_class = best_class == k[:, None]
    assert own_class.mean() >= 0.9
    # Samples land on a mode, not between the modes.
    assert sims.reshape(*sims.shape[:2], -1).max(-1).mean() > 0.9
    shares = []
    for c in np.unique(k):
        modes_hit = best_mode[k == c][own_class[k == c]]
        shares.append(min(np.mean(modes_hit == 0), np.mean(modes_hit == 1)))
    print(f"{name}: own class {own_class.mean():.3f}; smaller mode share per class {np.round(shares, 3)}")
    assert min(shares) >= 0.2


@pytest.mark.parametrize("name", ["reg-mlp", "reg-transformer"])
def test_regression_output_lies_between_the_two_modes(name, two_mode_pairs, tmp_path):
    data, train, held_out = two_mode_pairs
    _, mapper = _train(name, train, held_out, tmp_path, epochs=10)
    pred = mapper.map(held_out[0])[:, 0]
    modes = data.audio_modes[held_out[2]]  # (n, 2, dim)
    midpoint = l2(modes.sum(1))
    to_mid = np.sum(pred * midpoint, -1)
    to_nearest_mode = np.einsum("nd,nmd->nm", pred, modes).max(-1)
    print(f"{name}: cosine to midpoint {to_mid.mean():.3f}, to nearest mode {to_nearest_mode.mean():.3f}")
    assert np.mean(to_mid > to_nearest_mode) >= 0.9
