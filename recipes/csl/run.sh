#!/usr/bin/env bash
# CSL-Daily (CSL / Chinese): `make csl-recipe DATA=/path/to/CSL-Daily`
# DATA is the corpus root as distributed (sentence_label/, sentence/frames_512x512/).
# A2V-SLP's CSL-Daily settings: the larger VAE (--preset csl: 3-layer branches, beta 1e-7).
cd "$(dirname "$0")/../.."
source recipes/common.sh
DATA=${DATA:?set DATA=/path/to/CSL-Daily}
need_data "$DATA" "the CSL-Daily corpus root"
RUN=${RUN:-runs/csl}
VAE_ARGS=${VAE_ARGS:---preset csl}
CORPUS_CMD=($SLP prepare csl "$DATA" ${POSES:+--poses "$POSES"} ${WORKERS:+--workers $WORKERS})
source recipes/pipeline.sh
