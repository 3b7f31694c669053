#!/usr/bin/env bash
# `make demo`: run the main jobs on the embedded default model and the built-in images; PNGs go to $1.
set -euo pipefail
out=${1:-demo-out}
mkdir -p "$out"
diffcli=".venv/bin/diffcli"
export DIFFCLI_HOME=${DIFFCLI_HOME:-$PWD/$out/registry}

$diffcli noise builtin:house -t 250 -t 500 -t 750 --seed 1 -o "$out/noise-strip.png"
$diffcli denoise builtin:house --method blur -t 250 --seed 1 -o "$out/blur-denoised.png"
if $diffcli models show mnist >/dev/null 2>&1; then
  $diffcli sample --class 0 --class 1 --class 2 --class 3 --class 4 --class 5 --class 6 --class 7 --class 8 --class 9 -n 8 --seed 0 -o "$out/samples.png"
  $diffcli denoise builtin:digit --compare -t 150 --seed 1 -o "$out/denoise-compare.png"
  $diffcli anagram 6 9 --view rot180 -n 4 --seed 0 -o "$out/anagram-6-9.png"
  $diffcli hybrid 8 3 --explain --seed 0 -o "$out/hybrid-8-3.png"  # the README's hybrid: 70 % of seeds
fi
echo "demo images written to $out/:" >&2
ls -1 "$out"/*.png >&2
