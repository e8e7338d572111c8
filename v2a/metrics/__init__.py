"""Evaluation metrics: FD (PANNs), FAD (VGGish), CLIP-Score (Wav2CLIP), KL and IS (PANNs logits), and
av-benchmark's FD / KL / IS on PaSST, the ImageBind score (IB) and Synchformer's DeSync.

    specs            the one table of metrics (name, label, extractor, kind, the output it reads, what it needs)
    protocols        evaluation presets (v2a-mapper, av-benchmark) and channel rules
    frechet          squared Fréchet distance, float64, sqrtm cross-checked
    classification   KL divergence and Inception Score as av-benchmark computes them
    extractors       Cnn14 / VGGish / Wav2CLIP / PaSST / ImageBind / Synchformer built from a profile's
                     `extractors:` section
    audio            the one place audio is made mono, resampled and cut to the clip length
    reference_stats  cached Gaussian fits of the real audio, per extractor
    scores           all of the above on generated audio -> metric rows
    paper            the V2A-Mapper paper's reported numbers; mmaudio: MMAudio's VGGSound table
"""
