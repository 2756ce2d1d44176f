#!/usr/bin/env bash
# Install showattend into the active Python environment: torch + torchvision (launch/install_torch.sh), then the package
# in editable mode. With --test also the test extra and the system programs the tests drive: Debian's Chromium (the
# browser test) and a Java runtime (METEOR). Those need apt-get as root (or sudo); where that is impossible it says so in
# one line and goes on, and the tests that need them are skipped (under CI=true they fail).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  "") extra="" ;;
  --test) extra="[test]" ;;
  *) echo "usage: bash launch/install.sh [--test]" >&2; exit 2 ;;
esac

bash launch/install_torch.sh pip
pip install -e ".$extra"
[ -z "$extra" ] && exit 0

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then as_root=(); elif sudo -n true 2>/dev/null; then as_root=(sudo -n); else as_root=(none); fi
if [ "${as_root[*]}" != none ] && command -v apt-get >/dev/null 2>&1 \
   && "${as_root[@]}" apt-get update -q >/dev/null \
   && DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q "${missing[@]}" >/dev/null; then
  echo "install.sh: installed ${missing[*]} (apt-get)"
else
  echo "install.sh: could not install ${missing[*]} (needs apt-get as root or sudo); the tests that need them will be skipped" >&2
fi
