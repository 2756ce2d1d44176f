#!/usr/bin/env bash
# Wheels for a machine without internet: every package showattend needs except torch and torchvision (and their
# CUDA libraries, cuda-* bindings and triton), which GPU images carry already.
#
#   bash launch/offline_wheels.sh DIR [--python 3.12] [--platform manylinux_2_28_x86_64 --platform ...]
#                                     [--torch 2.6.0] [--extras hf,meteor,evaluate,test] [--dry-run]
#   # then, on the machine without internet (torch and torchvision installed), in a checkout of this repository:
#   pip install --no-index --find-links DIR -e .          # add [hf] etc. for the extras you downloaded
#
# --python / --platform: the interpreter and platform tags of the target (default: this machine's); repeat --platform
# for older fallbacks (manylinux_2_28_x86_64 manylinux2014_x86_64). --torch: the torch version the target has, so the
# packages that depend on torch resolve against it. --extras: optional groups of pyproject.toml (default: the core).
# Dependencies are resolved once (pip install --dry-run --report), then fetched without their torch part
# (pip download --no-deps). --dry-run prints the requirements and the pip commands instead of running them.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python}"
usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
dir="" extras="" torch_version="" dry_run=0 target=()
value() {  # value OPTION WHAT ARGS...: the option's value, or a one-line error (a value never starts with -)
  if [ $# -lt 4 ] || [ "${4#-}" != "$4" ] || [ -z "$4" ]; then
    echo "offline_wheels.sh: $1 needs $2" >&2
    exit 2
  fi
}
while [ $# -gt 0 ]; do
  case "$1" in
    --python) value "$1" "a version, e.g. 3.12" "$@"; target+=(--python-version "$2"); shift 2 ;;
    --platform) value "$1" "a tag, e.g. manylinux2014_x86_64" "$@"; target+=(--platform "$2"); shift 2 ;;
    --torch) value "$1" "a version, e.g. 2.6.0" "$@"; torch_version="$2"; shift 2 ;;
    --extras) value "$1" "a list, e.g. hf,meteor" "$@"; extras="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "offline_wheels.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) [ -z "$dir" ] || { echo "offline_wheels.sh: one DIR only, got '$dir' and '$1'" >&2; exit 2; }
       dir="$1"; shift ;;
  esac
done
[ -n "$dir" ] || { echo "offline_wheels.sh: DIR is required (where the wheels go; see --help)" >&2; exit 2; }

# The requirements: pyproject's build requirements, dependencies and the chosen extras (torch pinned with --torch).
mapfile -t requirements < <("$python" - "$repo/pyproject.toml" "$extras" "$torch_version" <<'PY'
import re, sys
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
path, extras, torch_version = sys.argv[1:]
project = tomllib.load(open(path, "rb"))
optional = project["project"].get("optional-dependencies", {})
unknown = [name for name in filter(None, extras.split(",")) if name not in optional]
if unknown:
    sys.exit(f"offline_wheels.sh: --extras {unknown[0]!r} is not in {path} (has {sorted(optional)})")
requirements = project["build-system"]["requires"] + project["project"]["dependencies"]
for name in filter(None, extras.split(",")):
    requirements += optional[name]
for requirement in dict.fromkeys(requirements):
    if torch_version and re.match(r"torch\b(?!vision)", requirement):
        requirement = f"torch=={torch_version}"
    print(requirement)
PY
)
[ "${#requirements[@]}" -gt 0 ] || exit 2  # the reader above said why
# What GPU images carry: never downloaded (a regex over normalised project names).
skip='^(torch|torchvision|triton|pytorch-triton|nvidia-.*|cuda-.*)$'

if [ "$dry_run" = 1 ]; then
  work='$TMP'
else
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
fi
resolve=("$python" -m pip install --dry-run --ignore-installed --only-binary=:all: --quiet --report "$work/report.json")
[ "${#target[@]}" -eq 0 ] || resolve+=(--target "$work/target" "${target[@]}")  # pip takes foreign tags only so
download=("$python" -m pip download --no-deps --only-binary=:all: --dest "$dir" "${target[@]}")
if [ "$dry_run" = 1 ]; then
  printf 'requirement: %s\n' "${requirements[@]}"
  echo "skipped: project names matching $skip"
  echo "resolve: ${resolve[*]} ${requirements[*]}"
  echo "download: ${download[*]} NAME==VERSION ... (the resolved packages minus the skipped ones)"
  exit 0
fi

"${resolve[@]}" "${requirements[@]}"
mapfile -t pins < <("$python" - "$work/report.json" "$skip" <<'PY'
import json, re, sys
report, skip = json.load(open(sys.argv[1])), re.compile(sys.argv[2])
for item in report["install"]:
    name = re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower()
    if not skip.match(name):
        print(f"{name}=={item['metadata']['version']}")
PY
)
mkdir -p "$dir"
"${download[@]}" "${pins[@]}"
echo "offline_wheels.sh: ${#pins[@]} wheels in $dir (torch, torchvision and their CUDA libraries left out)."
echo "install with: pip install --no-index --find-links '$dir' -e '${repo}${extras:+[$extras]}'"
