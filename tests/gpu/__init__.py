"""GPU tests (marker gpu): deselected, with a note in the summary, when CUDA is not available."""
