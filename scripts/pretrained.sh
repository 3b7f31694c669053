#!/usr/bin/env bash
# `make pretrained`: retrain the embedded models with `diffcli train` itself, score them with
# `diffcli eval`, and package them into diffcli/models/builtin/ (config.json + float16 weights).
#
#   bash scripts/pretrained.sh                 train, score, package
#   bash scripts/pretrained.sh --score-only    score and package the models trained by an earlier run
#   bash scripts/pretrained.sh --rescore       score and package the shipped models again (new sampling
#                                              defaults or scorer; no training)
#
#   MNIST_DIR    a torchvision root or IDX folder holding MNIST            (default: ../shared/data)
#   FASHION_DIR  the same for Fashion-MNIST; skipped when absent         (default: /usr/share/datasets/fashion-mnist)
#   WORK         scratch registry for the runs                             (default: out/pretrained)
#   MODELS       which embedded models to build                            (default: "mnist fashion mnist-fast")
set -euo pipefail
cd "$(dirname "$0")/.."
diffcli=".venv/bin/diffcli"
MNIST_DIR=${MNIST_DIR:-../shared/data}
FASHION_DIR=${FASHION_DIR:-/usr/share/datasets/fashion-mnist}
export DIFFCLI_HOME=${WORK:-$PWD/out/pretrained}
score_only=${1:-}

build() {  # name dataset data_dir guidance guidance_interval [diffcli train options...]
  local name=$1 dataset=$2 data=$3 guidance=$4 interval=$5
  shift 5
  if [ "$score_only" = "--rescore" ]; then
    rm -rf "$DIFFCLI_HOME/models/$name-train"
    mkdir -p "$DIFFCLI_HOME/models"
    cp -r "diffcli/models/builtin/$name" "$DIFFCLI_HOME/models/$name-train"
  elif [ "$score_only" != "--score-only" ]; then
    $diffcli train --dataset "$dataset" --data-dir "$data" --name "$name-train" --seed 0 --force --device cpu "$@"
  fi
  # The sampling defaults measured for the shipped models (docs/performance.md, "Guidance in an interval").
  .venv/bin/python scripts/package_builtin.py "$DIFFCLI_HOME/models/$name-train" "$DIFFCLI_HOME/models/$name" --guidance "$guidance" --guidance-interval "$interval"
  # Scored as shipped (float16 weights), with the model's own sampler settings, by the shipped scoring
  # classifier: the figures a user's `diffcli eval` reproduces offline.
  $diffcli eval --model "$name" --data-dir "$data" --device cpu -n 100 --record
  $diffcli eval --model "$name" --data-dir "$data" --device cpu --task anagram --view rot180 -n 10 --record
  $diffcli eval --model "$name" --data-dir "$data" --device cpu --task hybrid -n 10 --record
  .venv/bin/python scripts/package_builtin.py "$DIFFCLI_HOME/models/$name" "diffcli/models/builtin/$name"
}

wanted() { [[ " ${MODELS:-mnist fashion mnist-fast} " == *" $1 "* ]]; }
for model in ${MODELS:-mnist fashion mnist-fast}; do
  case $model in mnist|fashion|mnist-fast) ;; *) echo "pretrained.sh: MODELS names $model; the embedded models are mnist, fashion and mnist-fast" >&2; exit 2 ;; esac
done

# mnist: the default recipe (flow matching, logit-normal timesteps) trained 20 epochs instead of its 6; it
# draws the better hybrids (docs/illusions.md, "The model"). Its sampling defaults were measured on it.
if wanted mnist; then
  build mnist mnist "$MNIST_DIR" 3 0.2:0.7 --epochs 20
fi
# fashion: the v recipe (v-prediction, uniform timesteps), pinned so that this
# rebuilds what is shipped; its sampling settings below were measured on it.
if wanted fashion; then
  if [ -d "$FASHION_DIR" ]; then
    build fashion fashion-mnist "$FASHION_DIR" 5 0.2:0.7 --objective v --timestep-sampling uniform
  else
    echo "Fashion-MNIST not found at $FASHION_DIR: skipping the fashion model" >&2
  fi
fi
# mnist-fast: the 4-step student of the embedded mnist (docs/performance.md, "Few-step students"), distilled
# from the mnist this run packaged (or the shipped one), scored as shipped, and the teacher-vs-student figure.
if wanted mnist-fast; then
  if [ "$score_only" = "--rescore" ]; then
    rm -rf "$DIFFCLI_HOME/models/mnist-fast-train"
    mkdir -p "$DIFFCLI_HOME/models"
    cp -r diffcli/models/builtin/mnist-fast "$DIFFCLI_HOME/models/mnist-fast-train"
  elif [ "$score_only" != "--score-only" ]; then
    $diffcli distill -m mnist --steps 4 --name mnist-fast-train --data-dir "$MNIST_DIR" --seed 0 --force --device cpu
  fi
  .venv/bin/python scripts/package_builtin.py "$DIFFCLI_HOME/models/mnist-fast-train" "$DIFFCLI_HOME/models/mnist-fast"
  $diffcli eval --model mnist-fast --data-dir "$MNIST_DIR" --device cpu -n 100 --record
  $diffcli eval --model mnist-fast --data-dir "$MNIST_DIR" --device cpu --task anagram --view rot180 -n 10 --record
  $diffcli eval --model mnist-fast --data-dir "$MNIST_DIR" --device cpu --task hybrid -n 10 --record
  .venv/bin/python scripts/package_builtin.py "$DIFFCLI_HOME/models/mnist-fast" diffcli/models/builtin/mnist-fast
  .venv/bin/python scripts/distill_figure.py --out docs/performance/distill.png
fi
.venv/bin/python scripts/models_doc.py
echo "embedded models written to diffcli/models/builtin/; their figures are in each config.json (metrics.eval)" >&2
