# Shared by the recipes (sourced, not run): numbered stages that skip finished work.
#
#   STAGE=N      run only stage N           FROM=N   start at stage N
#   DRY_RUN=1    print the stages and their commands, run nothing
#   SLP=...      the slp command (default: .venv/bin/slp, else slp on PATH)
#   DEVICES=N    train on N GPUs with torchrun (default 1: one process)
#   JOBS=N       run up to N independent stages at once where a recipe allows it (the generators),
#                each with its share of the CPU cores as torch threads (default 1; not with DEVICES>1)
#
# Every slp stage writes its output atomically (temporary file + rename; a training run writes
# model.pt last), so "the output exists" means "the stage finished". An interrupted training
# stage is resumed (--resume) from its last checkpoint when the recipe runs again.

set -euo pipefail

SLP=${SLP:-$( [ -x .venv/bin/slp ] && echo .venv/bin/slp || echo slp )}
STAGE=${STAGE:-}
FROM=${FROM:-0}
DRY_RUN=${DRY_RUN:-}
DEVICES=${DEVICES:-1}
JOBS=${JOBS:-1}

# need_data PATH "what": a corpus root that must exist (checked in a dry run too, before any work)
need_data() {
  if [ ! -e "$1" ]; then
    printf 'error: DATA=%s: not found (%s)\n' "$1" "$2" >&2
    exit 1
  fi
}

# where the outputs go (runs/<corpus> inside this checkout unless RUN says otherwise)
announce_run() {
  case "$(cd "$(dirname "$RUN")" 2>/dev/null && pwd)/" in
    "$(pwd)"/*) printf '== outputs in %s (inside this checkout; RUN=/elsewhere to change)\n' "$RUN" >&2 ;;
    *) printf '== outputs in %s\n' "$RUN" >&2 ;;
  esac
}

# stage N "description" OUTPUT command...   (runs the command unless OUTPUT exists)
stage() {
  local n=$1 what=$2 out=$3
  shift 3
  if [ -n "$STAGE" ] && [ "$n" != "$STAGE" ]; then return 0; fi
  if [ "$n" -lt "$FROM" ]; then return 0; fi
  if [ -n "$DRY_RUN" ]; then
    printf 'stage %s: %s -> %s\n   ' "$n" "$what" "$out"
    printf ' %q' "$@"  # quoted as a shell would need them (e.g. table rows with spaces)
    printf '\n'
    return 0
  fi
  if [ -e "$out" ]; then
    printf '== stage %s: %s: done (%s exists)\n' "$n" "$what" "$out" >&2
    return 0
  fi
  printf '== stage %s: %s\n' "$n" "$what" >&2
  local start=$SECONDS
  mkdir -p "$(dirname "$out")"
  "$@"
  printf '== stage %s: done in %d s\n' "$n" $((SECONDS - start)) >&2
}

# train N "description" RUN_DIR MODEL args...   (a stage whose output is RUN_DIR/model.pt;
# resumes an interrupted run; DEVICES>1 launches torchrun)
train() {
  local n=$1 what=$2 dir=$3 model=$4
  shift 4
  local resume=()
  if [ -e "$dir/checkpoint.pt" ] && [ ! -e "$dir/model.pt" ]; then resume=(--resume); fi
  if [ "$DEVICES" -gt 1 ]; then
    local py
    py=$(dirname "$(command -v "$SLP")")/python
    stage "$n" "$what" "$dir/model.pt" "$py" -m torch.distributed.run --nproc_per_node "$DEVICES" \
      -m slp_cli train $model -o "$dir" "$@" "${resume[@]}"
  else
    stage "$n" "$what" "$dir/model.pt" "$SLP" train $model -o "$dir" "$@" "${resume[@]}"
  fi
}

# alongside COMMAND...   (in the background when JOBS>1: at most JOBS at once, each with
# cores / JOBS torch threads; small models gain little from a second thread, so two stages at once
# finish sooner); then `together` waits for them all and stops the recipe if one failed.
_alongside=()  # the pids of the stages started alongside others
alongside() {
  if [ "$JOBS" -le 1 ] || [ "$DEVICES" -gt 1 ] || [ -n "$DRY_RUN" ]; then "$@"; return; fi
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done  # a free slot (statuses: below)
  OMP_NUM_THREADS=$(( $(nproc) / JOBS > 0 ? $(nproc) / JOBS : 1 )) "$@" &
  _alongside+=($!)
}
together() {
  local pid failed=0
  for pid in "${_alongside[@]}"; do wait "$pid" || failed=$((failed + 1)); done  # a finished one too
  _alongside=()
  if [ "$failed" -gt 0 ]; then
    printf 'error: %d of the stages run alongside others failed (their messages are above)\n' "$failed" >&2
    exit 1
  fi
}
