"""Sample rates, one constant per model family, each from its model's published code.

The 16 kHz ones coincide, but they are separate facts: a model trained at another rate changes its own
constant and nothing else.
"""

# AudioLDM generates 16 kHz audio, and its CLAP conditioner receives audio at 16 kHz (github.com/haoheliu/AudioLDM).
AUDIOLDM_SAMPLE_RATE = 16000
# LAION CLAP's HTSAT audio encoder runs at 48 kHz (github.com/LAION-AI/CLAP).
CLAP_MODEL_SAMPLE_RATE = 48000
# PANNs Cnn14_16k (Kong et al., 2020; the FD extractor of AudioLDM's evaluation and of V2A-Mapper).
PANNS_SAMPLE_RATE = 16000
# VGGish (Hershey et al., 2017; the FAD extractor).
VGGISH_SAMPLE_RATE = 16000
# Wav2CLIP (Wu et al., 2022; the CLIP-Score audio encoder).
WAV2CLIP_SAMPLE_RATE = 16000
# PaSST-S (Koutini et al., 2022; av-benchmark's FD_PaSST / KL_PaSST) runs at 32 kHz (github.com/kkoutini/passt_hear21).
PASST_SAMPLE_RATE = 32000
# The rate clips are decoded at for the CLAP targets and the metrics: AudioLDM's.
DECODE_SAMPLE_RATE = AUDIOLDM_SAMPLE_RATE
# The CLAP's input window: AudioLDM's and LAION CLAP's HTS-AT hear the first 10 s of a clip (clip_samples 480000
# at 48 kHz in laion_clap's model configs).
CLAP_SECONDS = 10.0
