"""The demo: the whole framework in one command (``bash launch/demo.sh``, ``python -m trainer.demo``,
``showattend-demo``), each stage one of the framework's commands run as a subprocess.

- arguments: the command line and DEMO_* variables;  inputs: what a work dir is built from (WORK/demo_inputs.json);
- budget: the DEMO_MINUTES split between the stages;  stages: how a stage runs;  summary: the closing table;
- run: the stages in order, and ``main``.
"""
