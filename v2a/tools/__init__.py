"""Commands around the pipeline: the synthetic dataset, the demo, status, single-file generation and
interpolation, mapping embeddings, the model check. They may use stages; stages never use them."""
