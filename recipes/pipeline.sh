# The stages every recipe shares (sourced by recipes/<corpus>/run.sh after it has set RUN, the
# corpus command CORPUS_CMD (an array; the stage adds -o OUTPUT), and the model options below):
#
#   1 corpus (prepare / synth)   2 normalize          3 dictionary        4 train VAE
#   5 tokenize (VAE latents)     6 train VQ-VAE       7 train A2V-SLP     8-10 train SLT (pretrain,
#   fine-tune mapper+decoder, fine-tune all)          11 generate test (A2V-SLP)
#   12 generate test (dictionary concatenation)       13 score A2V-SLP    14 score concatenation
#   15 video of the first test sentence (A2V-SLP beside the ground truth)   16 table (always re-made)
#
# Options (defaults follow the papers through each model's `default` preset):
#   VAE_ARGS VQVAE_ARGS GEN_ARGS SLT_ARGS SLT_FT_ARGS   extra arguments of each training stage
#   LANGS                                               languages of the VQ-VAE (--langs)

VAE_ARGS=${VAE_ARGS:-}
VQVAE_ARGS=${VQVAE_ARGS:-}
GEN_ARGS=${GEN_ARGS:-}
SLT_ARGS=${SLT_ARGS:-}
SLT_FT_ARGS=${SLT_FT_ARGS:-$SLT_ARGS}
LANGS=${LANGS:-}
BASELINE=${BASELINE:-concat}  # 'none' where the corpus has no glosses (How2Sign): no dictionary stages
CORPUS=$RUN/corpus.norm.h5

[ -n "$DRY_RUN" ] || announce_run
stage 1 "corpus" "$RUN/corpus.h5" "${CORPUS_CMD[@]}" -o "$RUN/corpus.h5"
stage 2 "normalize (neck at origin, shoulder width 1)" "$CORPUS" $SLP normalize "$RUN/corpus.h5" -o "$CORPUS"
if [ "$BASELINE" = concat ]; then
  stage 3 "word-level sign dictionary" "$RUN/dictionary.h5" $SLP dict build "$CORPUS" --split train -o "$RUN/dictionary.h5"
fi
train 4 "train the disentangled VAE (A2V-SLP)" "$RUN/vae" vae --data "$CORPUS" $VAE_ARGS
stage 5 "VAE latents of the corpus" "$RUN/latents.h5" $SLP tokenize --model "$RUN/vae" "$CORPUS" -o "$RUN/latents.h5"
train 6 "train the decoupled VQ-VAE (SOKE)" "$RUN/vqvae" vqvae --data "$CORPUS" ${LANGS:+--langs $LANGS} $VQVAE_ARGS
train 7 "train the A2V-SLP generator" "$RUN/a2v" generator --arch a2v --tokenizer "$RUN/vae" --data "$CORPUS" $GEN_ARGS
train 8 "SLT pre-training (pseudo-glosses + alignment)" "$RUN/slt-pretrain" slt --stage pretrain --data "$CORPUS" $SLT_ARGS
train 9 "SLT fine-tuning (mapper + decoder)" "$RUN/slt-head" slt --stage finetune-head --init "$RUN/slt-pretrain" --data "$CORPUS" $SLT_FT_ARGS
train 10 "SLT fine-tuning (all)" "$RUN/slt" slt --stage finetune-all --init "$RUN/slt-head" --data "$CORPUS" $SLT_FT_ARGS
stage 11 "generate the test split (A2V-SLP)" "$RUN/a2v.test.h5" \
  $SLP generate --model "$RUN/a2v" --texts-from "$CORPUS" --split test -o "$RUN/a2v.test.h5"
if [ "$BASELINE" = concat ]; then
  stage 12 "generate the test split (dictionary concatenation)" "$RUN/concat.test.h5" \
    $SLP generate --method concat --dictionary "$RUN/dictionary.h5" --texts-from "$CORPUS" --split test -o "$RUN/concat.test.h5"
fi
stage 13 "score A2V-SLP (DTW, back-translation)" "$RUN/scores/a2v.json" \
  $SLP score --hyp "$RUN/a2v.test.h5" --ref "$CORPUS" --split test --backtranslate "$RUN/slt" --json "$RUN/scores/a2v.json"
rows=("A2V-SLP=$RUN/scores/a2v.json")
if [ "$BASELINE" = concat ]; then
  stage 14 "score dictionary concatenation" "$RUN/scores/concat.json" \
    $SLP score --hyp "$RUN/concat.test.h5" --ref "$CORPUS" --split test --backtranslate "$RUN/slt" --json "$RUN/scores/concat.json"
  rows+=("dictionary concatenation=$RUN/scores/concat.json")
fi
stage 15 "video: the first test sentence, A2V-SLP beside the ground truth" "$RUN/a2v.mp4" \
  $SLP render "$RUN/a2v.test.h5" --ref "$CORPUS" -o "$RUN/a2v.mp4"
[ -n "$DRY_RUN" ] || rm -f "$RUN/table.md"
stage 16 "the table" "$RUN/table.md" $SLP report "${rows[@]}" -o "$RUN/table.md"
