#!/usr/bin/env bash
# Video models and people on the same stimuli, end to end with the `ipe` command line:
#   1. train the two baselines (CNN: first frame → falls/count; SimVP-style video predictor);
#   2. a generated tower set with synthetic participants;
#   3. Mental Jenga experiment 2 with its human responses (needs ../shared/datasets/mental_jenga).
# Each set: renders (--video), CNN judgments, generated videos read out, IPE and no-noise rows, the report.
#
#   bash experiments/video_comparison.sh OUT_DIR [MENTAL_JENGA_ROOT]
#
# Training sizes are set for a small shared CPU (a few minutes each); see docs/video-models.md.
# Sizes come from the environment (N_TRAIN_CNN, EPOCHS_CNN, N_TEST_CNN, N_TRAIN_VIDEO, EPOCHS_VIDEO, N_TOWERS,
# N_PARTICIPANTS, IPE_SAMPLES, IPE_SAMPLES_MJ); tests/studies/test_experiments.py runs it with tiny ones.
set -euo pipefail
OUT=${1:-runs/video_comparison}
MJ=${2:-../shared/datasets/mental_jenga}
N_TRAIN_CNN=${N_TRAIN_CNN:-10000}
EPOCHS_CNN=${EPOCHS_CNN:-15}
N_TRAIN_VIDEO=${N_TRAIN_VIDEO:-300}
EPOCHS_VIDEO=${EPOCHS_VIDEO:-5}
IPE_SAMPLES=${IPE_SAMPLES:-30}
IPE_SAMPLES_MJ=${IPE_SAMPLES_MJ:-20}
N_TOWERS=${N_TOWERS:-40}
N_PARTICIPANTS=${N_PARTICIPANTS:-20}
N_TEST_CNN=${N_TEST_CNN:-400}
mkdir -p "$OUT"

# 1. baselines (training towers: seed 1001; the CNN's held-out towers: seed 2002)
[ -f "$OUT/cnn.pt" ] || ipe video train cnn --n-train "$N_TRAIN_CNN" --n-test "$N_TEST_CNN" --epochs "$EPOCHS_CNN" \
    --seed 0 --out "$OUT/cnn.pt"
[ -f "$OUT/video.pt" ] || ipe video train video --n-train "$N_TRAIN_VIDEO" --epochs "$EPOCHS_VIDEO" \
    --seed 0 --out "$OUT/video.pt"

compare_set() {  # NAME STIMULI RESPONSES IPE_ROLLOUTS
  local name=$1 stimuli=$2 responses=$3 samples=$4 d="$OUT/$1"
  ipe render "$stimuli" --video --size 64 --fps 30 --out "$d/renders"
  ipe video readout "$d/renders/gt" --stimuli "$stimuli" --out "$d/gt_readout.csv"
  ipe video generate "$OUT/cnn.pt" --stimuli "$stimuli" --renders "$d/renders" --out "$d/cnn"
  ipe video generate "$OUT/video.pt" --stimuli "$stimuli" --renders "$d/renders" --out "$d/video"
  ipe compare --humans "$responses" --stimuli "$stimuli" --samples "$samples" \
      --model "CNN (PhysNet-style)=$d/cnn/judgments.csv" \
      --model "video model (SimVP-style)=$d/video/judgments.csv" \
      --model "readout of no-noise renders=$d/gt_readout.csv" \
      --out "$d/comparison"
}

# 2. generated towers (test seed, apart from the training towers) with synthetic participants
ipe stimuli towers --n "$N_TOWERS" --balanced --seed 2002 --out "$OUT/towers.json"
ipe humans synthesize "$OUT/towers.json" --participants "$N_PARTICIPANTS" --sigma 0.2 --phi 0.05 --seed 1 \
    --out "$OUT/towers_responses.csv"
compare_set towers "$OUT/towers.json" "$OUT/towers_responses.csv" "$IPE_SAMPLES"

# 3. Mental Jenga experiment 2
if [ -d "$MJ" ]; then
  ipe datasets import mental-jenga "$MJ" --experiment 2 --out "$OUT/mj2"
  compare_set mental_jenga "$OUT/mj2/stimuli.json" "$OUT/mj2/responses.csv" "$IPE_SAMPLES_MJ"
else
  echo "no Mental Jenga data at $MJ; skipped" >&2
fi
