"""Evaluation metrics: FD (PANNs), FAD (VGGish), CLIP-Score (Wav2CLIP), KL and IS (PANNs logits).

    frechet          squared Fréchet distance, float64, sqrtm cross-checked
    classification   KL divergence and Inception Score as av-benchmark computes them
    extractors       Cnn14 / VGGish / Wav2CLIP built from a profile's `extractors:` section
    audio            the one place audio is resampled and cut to the clip length
    reference_stats  cached Gaussian fits of the real audio, per extractor
    evaluate         all of the above on generated audio -> metric rows with their protocol
    paper            the paper's reported numbers
"""
