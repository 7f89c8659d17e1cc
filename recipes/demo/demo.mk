# The demo recipe (recipes/demo/run.sh): the whole pipeline on the embedded synthetic corpus,
# from the corpus to the trained models, their outputs for the test split, a video and the table
# (docs/design.md, section 6). Each stage is skipped when its output exists; `make clean-demo` starts over.
# DEMO_PRESET=tiny gives a smoke run of the same stages; outputs go to $(DEMO_DIR).

DEMO_DIR    ?= demo
DEMO_PRESET ?= demo
DEMO_SEED   ?= 0
DEMO_DEPS   ?= $(STAMP)

demo: $(DEMO_DEPS)
	RUN=$(DEMO_DIR) DEMO_PRESET=$(DEMO_PRESET) DEMO_SEED=$(DEMO_SEED) SLP=$(SLP) bash recipes/demo/run.sh
	@echo "demo outputs in $(DEMO_DIR)/: table.md (.csv, .png), a2v.mp4, scores/, the models (a2v/ soke/ glos/ diffusion/, their tokenizers, t2g/ slt/)"

clean-demo:
	rm -rf $(DEMO_DIR)
