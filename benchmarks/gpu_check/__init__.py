"""One prepared GPU check: every CUDA path and the GPU figures in one run of at most 8 minutes.

    python -m benchmarks.gpu_check --json OUT.json --md OUT.md [--smoke] [--peak-tflops bf16=989,fp32=67]
                                   [--only tests,train,beam,features,xe_scst] [--mixture]

Sections, each with its own time budget (``__main__.SECTIONS``); one that fails records its error and the check goes
on, and the JSON is rewritten after every section, so a run cut short keeps what it measured:
``tests`` (pytest tests/gpu), ``train`` (decoder training captions/s, peak memory, MFU), ``beam`` (beam search
images/s), ``features`` (ResNet-50 feature extraction from JPEG shards), ``xe_scst`` (the demo's two training stages
on the shapes preset, test CIDEr-D; with ``--mixture`` on a 1:1 mixture of the shapes and toys presets, per-source test
CIDEr-D), then ``epoch_estimate`` (COCO Karpathy train minutes per epoch, on paper).
``--smoke`` runs the same code paths at toy sizes on the CPU (tests/test_gpu_check.py).
"""
