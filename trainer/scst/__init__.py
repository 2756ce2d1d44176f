"""Self-critical sequence training: CIDEr-D reward on token ids, its document frequencies, the loss, the loop."""
