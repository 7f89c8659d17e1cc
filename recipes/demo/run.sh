#!/usr/bin/env bash
# The demo recipe (`make demo`): the whole pipeline of recipes/pipeline.sh on the embedded
# synthetic corpus (DGS, CSL and ASL), sized for a 2-core laptop without a GPU: every model's
# `tiny` preset, trained for a few hundred to a few thousand steps. It ends by printing the table.
#
#   DEMO_PRESET=demo|tiny   corpus size (tiny: a smoke run of the same stages in about a minute)
#   DEMO_SEED=0             corpus seed
#   RUN=demo                output folder
#   VAE_STEPS VQVAE_STEPS GEN_STEPS SLT_STEPS SLT_FT_STEPS T2G_STEPS SOKE_STEPS GLOS_STEPS
#   SIGNVAE_STEPS ALIGNER_STEPS DIFFUSION_STEPS             training budgets (default: by DEMO_PRESET)
#   METHODS="a2v soke glos diffusion"                        the generators (all by default)
#   JOBS=2                  generators trained at once, one core each (the tiny models gain little
#                           from a second thread, so two at once finish sooner)
cd "$(dirname "$0")/../.."
JOBS=${JOBS:-2}
source recipes/common.sh
RUN=${RUN:-demo}
DEMO_PRESET=${DEMO_PRESET:-demo}
DEMO_SEED=${DEMO_SEED:-0}
#          VAE VQ  A2V  SLT FT  T2G  SOKE GLOS SIGNVAE ALIGNER DIFFUSION
if [ "$DEMO_PRESET" = tiny ]; then
  budget=(40  20  60   20  30  150  60   60   40      20      20)
else
  budget=(2000 200 3000 200 400 1500 600  2000 1000    400     1000)
fi
VAE_STEPS=${VAE_STEPS:-${budget[0]}}
VQVAE_STEPS=${VQVAE_STEPS:-${budget[1]}}   # each of the two VQ-VAEs (3 parts for SOKE, 4 for GLOS)
GEN_STEPS=${GEN_STEPS:-${budget[2]}}       # A2V-SLP
SLT_STEPS=${SLT_STEPS:-${budget[3]}}       # pre-training
SLT_FT_STEPS=${SLT_FT_STEPS:-${budget[4]}} # each fine-tuning stage
T2G_STEPS=${T2G_STEPS:-${budget[5]}}
SOKE_STEPS=${SOKE_STEPS:-${budget[6]}}
GLOS_STEPS=${GLOS_STEPS:-${budget[7]}}
SIGNVAE_STEPS=${SIGNVAE_STEPS:-${budget[8]}}
ALIGNER_STEPS=${ALIGNER_STEPS:-${budget[9]}}
DIFFUSION_STEPS=${DIFFUSION_STEPS:-${budget[10]}}

CORPUS_CMD=($SLP synth --preset "$DEMO_PRESET" --seed "$DEMO_SEED" --langs dgs,csl,asl)
LANGS=asl,csl,dgs  # the multilingual tokenizers (SOKE)
VAE_ARGS="--preset tiny --max-steps $VAE_STEPS --eval-every $((VAE_STEPS / 4))"
VQVAE_ARGS="--preset tiny --max-steps $VQVAE_STEPS --eval-every $VQVAE_STEPS"
T2G_ARGS="--preset tiny --max-steps $T2G_STEPS --eval-every $((T2G_STEPS / 3))"
# A2V-SLP: each of its two phases (the pipeline runs both: --phase all) gets half the steps
GEN_ARGS="--preset tiny --max-steps $((GEN_STEPS / 2)) --eval-every $((GEN_STEPS / 20))"
SOKE_ARGS="--preset demo --max-steps $SOKE_STEPS"
GLOS_ARGS="--preset tiny --max-steps $GLOS_STEPS --eval-every $((GLOS_STEPS / 4))"
SIGNVAE_ARGS="--preset tiny --max-steps $SIGNVAE_STEPS --eval-every $((SIGNVAE_STEPS / 4))"
ALIGNER_ARGS="--preset tiny --max-steps $ALIGNER_STEPS --eval-every $((ALIGNER_STEPS / 4))"
DIFFUSION_ARGS="--preset tiny --max-steps $DIFFUSION_STEPS --eval-every $((DIFFUSION_STEPS / 5))"
SLT_ARGS="--preset tiny --max-steps $SLT_STEPS --eval-every $SLT_STEPS"
SLT_FT_ARGS="--preset tiny --max-steps $SLT_FT_STEPS --eval-every $((SLT_FT_STEPS / 2))"
source recipes/pipeline.sh
