# The demo recipe: the whole pipeline on the embedded synthetic corpus (DESIGN.md section 6).
# Stages (each skipped by make when its output is newer than its inputs):
#   1 synth -> 2 normalize -> 3 dict build -> 4 generate (dictionary concatenation, test split)
#   -> 5 render -> 6 score (always re-run: it prints the table)
# Outputs go to $(DEMO_DIR). DEMO_PRESET=tiny gives a seconds-long smoke run.

DEMO_DIR    ?= demo
DEMO_PRESET ?= demo
DEMO_SEED   ?= 0
DEMO_LANGS  ?= dgs,csl,asl
DEMO_DEPS   ?= $(STAMP)

$(DEMO_DIR)/corpus.h5: $(DEMO_DEPS)
	$(SLP) synth --preset $(DEMO_PRESET) --seed $(DEMO_SEED) --langs $(DEMO_LANGS) -o $@

$(DEMO_DIR)/corpus.norm.h5: $(DEMO_DIR)/corpus.h5
	$(SLP) normalize $< -o $@

$(DEMO_DIR)/dictionary.h5: $(DEMO_DIR)/corpus.norm.h5
	$(SLP) dict build $< --split train -o $@

$(DEMO_DIR)/concat.h5: $(DEMO_DIR)/dictionary.h5 $(DEMO_DIR)/corpus.norm.h5
	$(SLP) generate --method concat --dictionary $(DEMO_DIR)/dictionary.h5 \
		--texts-from $(DEMO_DIR)/corpus.norm.h5 --split test -o $@

$(DEMO_DIR)/concat.mp4: $(DEMO_DIR)/concat.h5
	$(SLP) render $< --ref $(DEMO_DIR)/corpus.norm.h5 -o $@

demo: $(DEMO_DIR)/concat.mp4
	$(SLP) score --hyp $(DEMO_DIR)/concat.h5 --ref $(DEMO_DIR)/corpus.norm.h5 --split test \
		--json $(DEMO_DIR)/scores.json
	@echo "demo outputs in $(DEMO_DIR)/: corpus.h5 corpus.norm.h5 dictionary.h5 concat.h5 concat.mp4 scores.json"

clean-demo:
	rm -rf $(DEMO_DIR)
