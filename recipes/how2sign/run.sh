#!/usr/bin/env bash
# How2Sign (ASL / English): `make how2sign-recipe DATA=/path/to/How2Sign`
# DATA holds how2sign_realigned_{train,val,test}.csv and the sentence clips
# ({train,val,test}_rgb_front_clips/raw_videos/). How2Sign has no glosses: the dictionary stage
# finds no gloss spans, so the dictionary-concatenation stages are left out (BASELINE=none).
cd "$(dirname "$0")/../.."
source recipes/common.sh
DATA=${DATA:?set DATA=/path/to/How2Sign}
need_data "$DATA" "the How2Sign corpus root"
RUN=${RUN:-runs/how2sign}
BASELINE=${BASELINE:-none}
CORPUS_CMD=($SLP prepare how2sign "$DATA" ${POSES:+--poses "$POSES"} ${WORKERS:+--workers $WORKERS})
source recipes/pipeline.sh
