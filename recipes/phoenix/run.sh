#!/usr/bin/env bash
# PHOENIX-2014T (DGS / German): `make phoenix-recipe DATA=/path/to/PHOENIX-2014-T`
# DATA is the corpus root as distributed (annotations/manual/*.corpus.csv, features/fullFrame-210x260px/).
# POSES=FILE.h5 attaches an existing pose artifact (ids = PHOENIX names) instead of extracting.
# Defaults: the papers' (A2V-SLP sections 4.3-4.4 and HFA-SLT section 4.2; docs/papers.md).
cd "$(dirname "$0")/../.."
source recipes/common.sh
DATA=${DATA:?set DATA=/path/to/PHOENIX-2014-T}
need_data "$DATA" "the PHOENIX-2014-T corpus root"
RUN=${RUN:-runs/phoenix}
CORPUS_CMD=($SLP prepare phoenix "$DATA" ${POSES:+--poses "$POSES"} ${WORKERS:+--workers $WORKERS})
source recipes/pipeline.sh
