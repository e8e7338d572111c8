"""Evaluation protocols as named presets: which metrics, what clip length, and how a file becomes metric input.

Every results row records the protocol and the channel rule it was scored under (columns `protocol`,
`channel_rule`), so rows of two protocols are never read as comparable.

- `v2a-mapper` (default): the V2A-Mapper paper's table (Wang et al., AAAI 2024): 10-s clips, FD on
  PANNs Cnn14 at 16 kHz, FAD on VGGish, CS on Wav2CLIP, KL / IS on PANNs logits. Short clips are
  zero-padded to the clip length. The paper published no evaluation code, so its channel rule is
  v2a's own (`mean`), which also leaves every number of earlier v2a releases unchanged.
- `av-benchmark`: hkchengrex/av-benchmark as MMAudio (Cheng et al., CVPR 2025) reports it: 8-s clips by
  default (`audio_length`, settable), FD on PaSST / PANNs / VGGish, KL on PANNs / PaSST, IS on PANNs
  (and on PaSST), IB on ImageBind, DeSync on Synchformer. Its `AudioDataset.read_from_file`
  (`av_bench/data/audio_dataset.py`) averages the channels, removes the mean, resamples with
  `torchaudio.transforms.Resample` and keeps the first `audio_length` seconds without padding.
- `audioldm-eval`: haoheliu/audioldm_eval 0.0.3 (`EvaluationHelper.calculate_metrics` with its Cnn14 at
  16 kHz), the numbers of the AudioLDM family of papers: FD on PANNs Cnn14 `2048` embeddings, KL with its
  1e-6 inside the log (`metrics/kl.py`, `kullback_leibler_divergence_softmax`), IS on the PANNs logits.
  Its FD (`metrics/fid.py`) takes sqrtm of the unregularised covariance product and adds 1e-6 only when
  that is not finite (`fd_offset="if-non-finite"`; v2a's default offsets every singular covariance).
  Files are read as its `WaveDataset.read_from_file` reads them: channel 0, its mean removed, resampled
  straight to 16 kHz (`torchaudio.functional.resample`), zero-padded to at least 2 s (`pad_short_audio`,
  32,000 samples) and never cut: every clip is scored at its whole length.

Channel rules (how a stereo or off-rate file becomes one mono waveform):
- `mean`: the channels averaged (v2a's rule; the decoders' `channels="mean"`).
- `channel0-minus-mean`: channel 0, its mean removed (audioldm_eval 0.0.3, `datasets/load_mel.py`:
  `waveform = waveform[0, ...]`, `waveform = waveform - np.mean(waveform)`).
- `av-benchmark`: the channels averaged, then the mean removed (av-benchmark's `read_from_file`).
Every rule resamples with torchaudio's windowed-sinc resampler (the default filter of both references).

A plain-data module, importable without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

CHANNEL_RULES = ("mean", "channel0-minus-mean", "av-benchmark")


@dataclass(frozen=True)
class Protocol:
    name: str
    clip_seconds: float | None   # None: the generation's own length (the pipeline's 10 s by default)
    metrics: tuple[str, ...]     # the default metric list, in the reference table's column order
    channel_rule: str            # the default rule, from the reference's own code
    pad_short: bool              # zero-pad clips shorter than clip_seconds (False: score them as they are)
    source: str
    kl: str = "av-benchmark"     # the `kl` rows' formula: `v2a.metrics.classification.KL_FORMULAS`
    fd_offset: str = "if-singular"  # when FD regularises a singular covariance: `v2a.metrics.frechet.OFFSET_RULES`
    whole_file: bool = False     # score every file at its own length (no clip length unless one is asked for)
    min_seconds: float | None = None  # zero-pad files shorter than this (after resampling)
    read_rate: int | None = None      # read every file straight to this rate (one resampling per file)


PROTOCOLS: dict[str, Protocol] = {
    "v2a-mapper": Protocol("v2a-mapper", None, ("fd", "fad", "cs", "kl", "is"), "mean", True,
                           "V2A-Mapper (Wang et al., AAAI 2024) Table 1: VGGSound test, 10-s clips"),
    # MMAudio's columns in its order (FD_PaSST, FD_PANNs, FD_VGG, KL_PANNs, KL_PaSST, IS, IB, DeSync), then
    # av-benchmark's ISC-PASST. MMAudio's own training loop logs av-benchmark's `ISC-PANNS-mean` as its IS, so IS
    # is the PANNs one. DeSync needs clips of at least 4.8 s; shorter ones are scored without it.
    "av-benchmark": Protocol("av-benchmark", 8.0, ("fd_passt", "fd", "fad", "kl", "kl_passt", "is", "ib", "desync",
                                                   "is_passt"),
                             "av-benchmark", False,
                             "hkchengrex/av-benchmark (MMAudio, Cheng et al., CVPR 2025, arXiv 2412.15322): "
                             "8-s clips, av_bench/extract.py and evaluate.py"),
    "audioldm-eval": Protocol("audioldm-eval", None, ("fd", "kl", "is"), "channel0-minus-mean", False,
                              "haoheliu/audioldm_eval 0.0.3 (AudioLDM, Liu et al., ICML 2023): Cnn14 at 16 kHz, "
                              "whole files padded to 2 s, datasets/load_mel.py and metrics/", kl="audioldm-eval",
                              fd_offset="if-non-finite", whole_file=True, min_seconds=2.0, read_rate=16000),
}
PROTOCOL_NAMES = tuple(PROTOCOLS)
DEFAULT_PROTOCOL = "v2a-mapper"


def protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; accepted: {', '.join(PROTOCOL_NAMES)}") from None
