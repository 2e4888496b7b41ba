#!/bin/bash
# CPU seconds of the documented simulation commands (course lab, Mental Jenga exp. 2), one ipe tree against another.
#
#   git worktree add /tmp/ipe-before 793be95
#   benchmarks/bench_commands.sh /tmp/ipe-before . /tmp/bench-commands      # BEFORE_TREE AFTER_TREE WORKDIR
#
# Each command runs with PYTHONPATH set to each tree (course-lab commands twice, interleaved), timed by
# /usr/bin/time (user + system); the outputs of the two trees are compared byte for byte. Needs the Mental
# Jenga data at ../shared/datasets/mental_jenga beside the AFTER tree.
set -e
BEFORE=$(cd "$1" && pwd); AFTER=$(cd "$2" && pwd); WORK=${3:-/tmp/bench-commands}
MJ="$AFTER/../shared/datasets/mental_jenga"
mkdir -p "$WORK" && cd "$WORK"
echo "before $(git -C "$BEFORE" rev-parse --short HEAD)  after $(git -C "$AFTER" rev-parse --short HEAD)"
run() { # TREE LABEL ipe-args...
  local tree=$1 label=$2; shift 2
  local load=$(cut -d' ' -f1 /proc/loadavg)
  PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=$tree /usr/bin/time -f "%e %U %S" -o time.txt python -m ipe.cli "$@" \
    > /dev/null 2> err.txt || { cat err.txt; exit 1; }
  read -r e u s < time.txt
  echo "$label $([ "$tree" = "$BEFORE" ] && echo before || echo after) wall=${e}s cpu=$(python3 -c "print(round($u + $s, 2))")s load=$load"
}
tag() { [ "$1" = "$BEFORE" ] && echo before || echo after; }
PYTHONPATH=$AFTER python -m ipe.cli stimuli towers --n 12 --balanced --seed 3 --out towers.json > /dev/null
[ -d mj2 ] || PYTHONPATH=$AFTER python -m ipe.cli datasets import mental-jenga "$MJ" --experiment 2 --out mj2 > /dev/null
for rep in 1 2; do
  for tree in "$BEFORE" "$AFTER"; do
    run "$tree" course-lab-sweep sweep towers.json --grid sigma=0,0.2,0.4 --grid phi=0,0.2,0.4 --samples 8 \
      --no-cache --out "sweep_$(tag "$tree").csv"
    run "$tree" course-lab-predict predict towers.json --sigma 0.2 --phi 0.2 --samples 20 --no-cache \
      --out "pred_$(tag "$tree").csv"
  done
done
for tree in "$BEFORE" "$AFTER"; do
  run "$tree" mj2-predict predict mj2/stimuli.json --removal-impulse 3.3 --samples 200 --no-cache \
    --out "mj_$(tag "$tree").csv"
done
for f in sweep pred mj; do cmp "${f}_before.csv" "${f}_after.csv" && echo "$f: identical outputs"; done
