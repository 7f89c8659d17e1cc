# The stages every recipe shares (sourced by recipes/<corpus>/run.sh after it has set RUN, the
# corpus command CORPUS_CMD (an array; the stage adds -o OUTPUT), and the model options below).
# Stage numbers are fixed, so STAGE=N and FROM=N mean the same whatever METHODS holds:
#
#    1 corpus (prepare / synth)       2 normalize                  3 word-level dictionary
#    4 text-to-gloss (the glosser)    5 VAE (A2V-SLP)              6 VAE latents of the corpus
#    7 VQ-VAE, 3 parts (SOKE)         8 VQ-VAE, 4 parts (GLOS)     9 SignVAE (Text2Sign Diffusion)
#   10 aligner (Text2Sign Diffusion)  11-13 SLT back-translator (pre-training, fine-tune mapper +
#   decoder, fine-tune all)           14-17 generators: A2V-SLP, SOKE, GLOS, Text2Sign Diffusion
#   18 glosses of the test split, 19 their scores (gloss WER, BLEU)
#   20-31 generate the test split and score it (DTW, back-translation), method by method: A2V-SLP,
#   SOKE, GLOS, Text2Sign Diffusion, dictionary concatenation (lemma look-up, then the glosser)
#   32 video of the first test sentence (A2V-SLP beside the ground truth)   33 table (re-made)
#
# Options (defaults follow the papers through each model's `default` preset):
#   METHODS     the generators to train and score (default: "a2v soke glos diffusion")
#   BASELINE    concat (the corpus has glosses) or none (How2Sign: no dictionary, glosser, GLOS)
#   LANGS       languages of the VQ-VAEs (--langs)
#   VAE_ARGS VQVAE_ARGS VQVAE4_ARGS T2G_ARGS SIGNVAE_ARGS ALIGNER_ARGS SLT_ARGS SLT_FT_ARGS
#   GEN_ARGS (A2V-SLP) SOKE_ARGS GLOS_ARGS DIFFUSION_ARGS     extra arguments of each training stage

METHODS=${METHODS:-a2v soke glos diffusion}
VAE_ARGS=${VAE_ARGS:-}
VQVAE_ARGS=${VQVAE_ARGS:-}
VQVAE4_ARGS=${VQVAE4_ARGS:-$VQVAE_ARGS}
T2G_ARGS=${T2G_ARGS:-}
SIGNVAE_ARGS=${SIGNVAE_ARGS:-}
ALIGNER_ARGS=${ALIGNER_ARGS:-}
SLT_ARGS=${SLT_ARGS:-}
SLT_FT_ARGS=${SLT_FT_ARGS:-$SLT_ARGS}
SLT_FT_ALL_ARGS=${SLT_FT_ALL_ARGS:-$SLT_FT_ARGS}
GEN_ARGS=${GEN_ARGS:-}
SOKE_ARGS=${SOKE_ARGS:-}
GLOS_ARGS=${GLOS_ARGS:-}
DIFFUSION_ARGS=${DIFFUSION_ARGS:-}
LANGS=${LANGS:-}
BASELINE=${BASELINE:-concat}
CORPUS=$RUN/corpus.norm.h5
if [ "$BASELINE" != concat ]; then METHODS=${METHODS//glos/}; fi  # GLOS needs gloss annotations

# uses METHOD: is METHOD one of METHODS
uses() { case " $METHODS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
glosses() { [ "$BASELINE" = concat ]; }

[ -n "$DRY_RUN" ] || announce_run
stage 1 "corpus" "$RUN/corpus.h5" "${CORPUS_CMD[@]}" -o "$RUN/corpus.h5"
stage 2 "normalize (neck at origin, shoulder width 1)" "$CORPUS" $SLP normalize "$RUN/corpus.h5" -o "$CORPUS"
if glosses; then
  stage 3 "word-level sign dictionary" "$RUN/dictionary.h5" $SLP dict build "$CORPUS" --split train -o "$RUN/dictionary.h5"
  train 4 "train the text-to-gloss translator (the glosser)" "$RUN/t2g" text2gloss --data "$CORPUS" $T2G_ARGS
fi
if uses a2v; then
  train 5 "train the disentangled VAE (A2V-SLP)" "$RUN/vae" vae --data "$CORPUS" $VAE_ARGS
  stage 6 "VAE latents of the corpus" "$RUN/latents.h5" $SLP tokenize --model "$RUN/vae" "$CORPUS" -o "$RUN/latents.h5"
fi
if uses soke; then
  train 7 "train the decoupled VQ-VAE (SOKE)" "$RUN/vqvae" vqvae --data "$CORPUS" ${LANGS:+--langs $LANGS} $VQVAE_ARGS
fi
if uses glos; then
  train 8 "train the VQ-VAE with a face stream (GLOS)" "$RUN/vqvae4" vqvae --parts body,lhand,rhand,face \
    --data "$CORPUS" ${LANGS:+--langs $LANGS} $VQVAE4_ARGS
fi
if uses diffusion; then
  train 9 "train the SignVAE (Text2Sign Diffusion)" "$RUN/signvae" signvae --data "$CORPUS" $SIGNVAE_ARGS
  train 10 "train the cross-modal aligner (Text2Sign Diffusion)" "$RUN/aligner" aligner --tokenizer "$RUN/signvae" \
    --data "$CORPUS" $ALIGNER_ARGS
fi
train 11 "SLT pre-training (pseudo-glosses + alignment)" "$RUN/slt-pretrain" slt --stage pretrain --data "$CORPUS" $SLT_ARGS
train 12 "SLT fine-tuning (mapper + decoder)" "$RUN/slt-head" slt --stage finetune-head --init "$RUN/slt-pretrain" --data "$CORPUS" $SLT_FT_ARGS
train 13 "SLT fine-tuning (all)" "$RUN/slt" slt --stage finetune-all --preset finetune-all --init "$RUN/slt-head" \
  --data "$CORPUS" $SLT_FT_ALL_ARGS

if uses a2v; then
  alongside train 14 "train the A2V-SLP generator" "$RUN/a2v" generator --arch a2v --phase all --tokenizer "$RUN/vae" --data "$CORPUS" $GEN_ARGS
fi
if uses soke; then
  retrieval=(--no-retrieval)  # SOKE's retrieval looks words up in the dictionary (stage 3)
  if glosses; then retrieval=(--dictionary "$RUN/dictionary.h5"); fi
  alongside train 15 "train the SOKE generator" "$RUN/soke" generator --arch soke --tokenizer "$RUN/vqvae" "${retrieval[@]}" \
    --data "$CORPUS" $SOKE_ARGS
fi
if uses glos; then
  alongside train 16 "train the GLOS generator" "$RUN/glos" generator --arch glos --tokenizer "$RUN/vqvae4" --data "$CORPUS" $GLOS_ARGS
fi
if uses diffusion; then
  alongside train 17 "train the Text2Sign Diffusion generator" "$RUN/diffusion" generator --arch diffusion --tokenizer "$RUN/signvae" \
    --aligner "$RUN/aligner" --data "$CORPUS" $DIFFUSION_ARGS
fi
together  # the generators (stages 14-17) are independent of each other: JOBS=2 trains two at once

if glosses; then
  stage 18 "glosses of the test split (the glosser)" "$RUN/t2g.test.jsonl" \
    $SLP text2gloss --model "$RUN/t2g" --texts-from "$CORPUS" --split test -o "$RUN/t2g.test.jsonl"
  stage 19 "score the glosser (gloss WER, BLEU)" "$RUN/scores/t2g.json" \
    $SLP score-glosses --hyp "$RUN/t2g.test.jsonl" --ref "$CORPUS" --split test --json "$RUN/scores/t2g.json"
fi
rows=()
# generate_and_score N NAME "label" generate-options...   (stages N and N+1)
generate_and_score() {
  local n=$1 m=$(($1 + 1)) name=$2 label=$3
  shift 3
  stage "$n" "generate the test split ($label)" "$RUN/$name.test.h5" \
    $SLP generate "$@" --texts-from "$CORPUS" --split test -o "$RUN/$name.test.h5"
  stage "$m" "score $label (DTW, back-translation)" "$RUN/scores/$name.json" \
    $SLP score --hyp "$RUN/$name.test.h5" --ref "$CORPUS" --split test --backtranslate "$RUN/slt" --json "$RUN/scores/$name.json"
  rows+=("$label=$RUN/scores/$name.json")
}
if uses a2v; then generate_and_score 20 a2v "A2V-SLP" --model "$RUN/a2v"; fi
if uses soke; then generate_and_score 22 soke "SOKE" --model "$RUN/soke"; fi
if uses glos; then generate_and_score 24 glos "GLOS" --model "$RUN/glos" --glosser "$RUN/t2g"; fi
if uses diffusion; then generate_and_score 26 diffusion "Text2Sign Diffusion" --model "$RUN/diffusion"; fi
if glosses; then
  generate_and_score 28 concat "dictionary concatenation" --method concat --dictionary "$RUN/dictionary.h5"
  generate_and_score 30 concat-glosser "dictionary concatenation, glosser" --method concat \
    --dictionary "$RUN/dictionary.h5" --glosser "$RUN/t2g"
fi
read -r first _ <<< "$METHODS" || true
if [ -n "$first" ]; then
  stage 32 "video: the first test sentence, ${rows[0]%%=*} beside the ground truth" "$RUN/$first.mp4" \
    $SLP render "$RUN/$first.test.h5" --ref "$CORPUS" -o "$RUN/$first.mp4"
fi
glosser_row=()
if glosses; then glosser_row=(--glosser "text-to-gloss=$RUN/scores/t2g.json"); fi
[ -n "$DRY_RUN" ] || rm -f "$RUN/table.md"
stage 33 "the table" "$RUN/table.md" $SLP report "${rows[@]}" "${glosser_row[@]}" -o "$RUN/table.md"
