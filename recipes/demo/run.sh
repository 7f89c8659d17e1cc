#!/usr/bin/env bash
# The demo recipe (`make demo`): the whole pipeline of recipes/pipeline.sh on the embedded
# synthetic corpus (DGS, CSL and ASL), sized for a 2-core laptop without a GPU: every model's
# `tiny` preset, trained for a few hundred to a few thousand steps. It ends by printing the table.
#
#   DEMO_PRESET=demo|tiny   corpus size (tiny: a smoke run of the same stages in about a minute)
#   DEMO_SEED=0             corpus seed
#   RUN=demo                output folder
#   VAE_STEPS VQVAE_STEPS GEN_STEPS SLT_STEPS SLT_FT_STEPS   training budgets (default: by DEMO_PRESET)
cd "$(dirname "$0")/../.."
source recipes/common.sh
RUN=${RUN:-demo}
DEMO_PRESET=${DEMO_PRESET:-demo}
DEMO_SEED=${DEMO_SEED:-0}
if [ "$DEMO_PRESET" = tiny ]; then budget=(40 20 60 20 30); else budget=(2000 200 6000 200 400); fi
VAE_STEPS=${VAE_STEPS:-${budget[0]}}
VQVAE_STEPS=${VQVAE_STEPS:-${budget[1]}}
GEN_STEPS=${GEN_STEPS:-${budget[2]}}
SLT_STEPS=${SLT_STEPS:-${budget[3]}}        # pre-training
SLT_FT_STEPS=${SLT_FT_STEPS:-${budget[4]}}  # each fine-tuning stage

CORPUS_CMD=($SLP synth --preset "$DEMO_PRESET" --seed "$DEMO_SEED" --langs dgs,csl,asl)
LANGS=asl,csl,dgs  # the multilingual tokenizer (SOKE)
VAE_ARGS="--preset tiny --max-steps $VAE_STEPS --eval-every $((VAE_STEPS / 4))"
VQVAE_ARGS="--preset tiny --max-steps $VQVAE_STEPS --eval-every $VQVAE_STEPS"
# The KL phase (A2V-SLP eq. 4) for the last quarter of the steps, as in bench/ablation_a2v.py.
GEN_ARGS="--preset tiny --max-steps $GEN_STEPS --eval-every $((GEN_STEPS / 10)) --kl-phase-start $((GEN_STEPS * 3 / 4))"
SLT_ARGS="--preset tiny --max-steps $SLT_STEPS --eval-every $SLT_STEPS"
SLT_FT_ARGS="--preset tiny --max-steps $SLT_FT_STEPS --eval-every $((SLT_FT_STEPS / 2))"
source recipes/pipeline.sh
