#!/usr/bin/env bash
# The whole framework in one command (bash launch/demo.sh --help): trainer/demo/, run with this checkout's code by
# PYTHON (default: python), the interpreter of every stage too.
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHON="${PYTHON:-python}" PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" -m trainer.demo "$@"
