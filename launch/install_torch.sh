#!/usr/bin/env bash
# Install torch + torchvision with a pip (default: the active one). Versions that install offline on our CI machines;
# on a GPU machine with a matching CUDA, `pip install torch torchvision` within pyproject's ranges works as well.
set -euo pipefail
pip_cmd="${1:-pip}"
case "$(uname -m)" in
  aarch64|arm64) "$pip_cmd" install torch==2.9.1 torchvision==0.24.1 ;;
  *)             "$pip_cmd" install torch==2.14.1 torchvision==0.29.1 ;;
esac
