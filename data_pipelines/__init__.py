"""Dataset preparation, vocabulary, WebDataset streaming, synthetic data and feature caches."""
