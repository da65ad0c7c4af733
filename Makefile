# Two commands for a newcomer: `make demo` (the main job end to end) and `make test` (the suite, after the
# import layers and the documentation's strict build).
# Both create .venv and install the project into it when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DETPIPE := $(VENV)/bin/detpipe
STAMP := $(VENV)/.installed
DATA := data/shapes
RUN := runs/demo

.PHONY: demo test install clean bench

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	@echo "== 1/6 build a synthetic shapes dataset and split it (80/20)"
	$(DETPIPE) data synth --out $(DATA) --num-images 500 --seed 0
	$(DETPIPE) data split $(DATA)/annotations.json --out $(DATA) --val 0.2 --seed 0
	$(DETPIPE) data synth --out data/shapes-unseen --num-images 6 --seed 999
	@echo "== 2/6 train Faster R-CNN (tiny backbone) from configs/demo.yaml into $(RUN)/"
	$(DETPIPE) train configs/demo.yaml output_dir=$(RUN)
	@echo "== 3/6 evaluate best.pt on the held-out split (COCO mAP, per-class table, pictures in $(RUN)/eval/)"
	$(DETPIPE) eval --checkpoint $(RUN)/best.pt --annotations $(DATA)/val.json \
		--images $(DATA)/images --out $(RUN)/eval.json --plots $(RUN)/eval
	@echo "== 4/6 predict on unseen images (boxes drawn into $(RUN)/predict/)"
	$(DETPIPE) predict --checkpoint $(RUN)/best.pt --source data/shapes-unseen/images \
		--out $(RUN)/predict --score-threshold 0.5
	@echo "== 5/6 serve best.pt over HTTP, send one image, print the answer, shut down"
	$(PY) -m serve.smoke --checkpoint $(RUN)/best.pt --image data/shapes-unseen/images/000000.png
	@echo "== 6/6 pictures to look at, and the held-out metrics ($(RUN)/eval.json)"
	@echo "training (last evaluation): $(RUN)/results.png $(RUN)/pr_curves.png $(RUN)/confusion_matrix.png $(RUN)/val_predictions.jpg"
	@echo "best.pt on the held-out split: $(RUN)/eval/pr_curves.png $(RUN)/eval/confusion_matrix.png $(RUN)/eval/val_predictions.jpg"
	@echo "compare runs: $(DETPIPE) plot $(RUN) runs/OTHER --out compare.png"
	@cat $(RUN)/eval.json

test: $(STAMP)
	$(VENV)/bin/lint-imports
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir .site
	$(PY) -m pytest tests -p no:cacheprovider --timeout 600

bench: $(STAMP)
	$(PY) benchmarks/bench_train_demo.py
	$(PY) benchmarks/bench_datasets.py
	$(PY) benchmarks/bench_families.py

clean:
	rm -rf runs data
