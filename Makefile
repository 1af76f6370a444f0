# fer-tf: `make demo` (everything on the bundled sample) and `make test` (the test suite) work on a
# machine with only Python 3.11 and make: both create the virtual environment first.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
FERTF  := $(BIN)/fer-tf

DATASET ?= fer2013
ifeq ($(DATASET),genki)
DATA          ?= ../shared/data/genki4k.tar.gz
RECORDS_FLAGS ?= --dataset genki
endif
ifeq ($(DATASET),ferplus)
RECORDS_FLAGS ?= --ferplus ../shared/data/fer2013new.csv
RUN           ?= runs/$(MODEL)_ferplus
endif
ifeq ($(DATASET),landmarks)
DATA          ?= ../shared/data/landmarks68_300w.tar.gz
RECORDS_FLAGS ?= --dataset landmarks
endif
DATA    ?= ../shared/data/fer2013.csv.gz
RECORDS ?= records/$(DATASET)
MODEL   ?= lenet7
RUN     ?= runs/$(MODEL)
SPLIT   ?= test
FOLDS   ?= 10
PORT    ?= 6006
RECORDS_FLAGS ?=
TRAIN_FLAGS   ?=

.PHONY: setup demo records train cv eval export predict tensorboard test test-quick bench clean-demo docs mutation serve

$(VENV)/.installed: setup.py
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found; pass PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	@echo "== 1/5 convert the bundled FER2013 sample (308 faces, Kaggle csv) to 48x48 TFRecords"
	$(FERTF) records tests/data/fer2013_sample.csv.gz --out demo/records --quiet
	@echo "== 2/5 train LeNet7 briefly with train_and_evaluate (a fresh model dir each time)"
	rm -rf demo/run
	$(FERTF) train --model lenet7 --data demo/records --model-dir demo/run --epochs 30 --eval-every 10
	@echo "== 3/5 evaluate the best export on the sample's PrivateTest rows (49 faces: a smoke test, not a result)"
	$(FERTF) eval --model demo/run --data demo/records --split test --confusion-png demo/confusion_test.png
	@echo "== 4/5 export the best SavedModel to demo/export"
	$(FERTF) export --model-dir demo/run --out demo/export
	@echo "== 5/5 predict: detect, align and classify the faces in a photo (two GENKI-4K photos side by side),"
	@echo "==     first with the demo model, then with the shipped models (expression + smile)"
	$(FERTF) predict tests/data/two_faces.jpg --model demo/export --no-smile
	@if [ -d models/default ]; then $(FERTF) predict tests/data/two_faces.jpg; fi

records: setup
	$(FERTF) records $(DATA) --out $(RECORDS) $(RECORDS_FLAGS)

train: setup
	$(FERTF) train --model $(MODEL) --data $(RECORDS) --model-dir $(RUN) $(TRAIN_FLAGS)

cv: setup
	$(FERTF) cv --model $(MODEL) --data $(RECORDS) --folds $(FOLDS) --model-dir runs/$(MODEL)_cv

eval: setup
	$(FERTF) eval --model $(RUN) --data $(RECORDS) --split $(SPLIT)

export: setup
	$(FERTF) export --model-dir $(RUN) --out models/$(MODEL)

# With no trained run at $(RUN), the model shipped in models/default answers.
predict: setup
	@test -n "$(IMAGES)" || { echo "make predict: give IMAGES=photo.jpg (files, folders or a webcam index)"; exit 2; }
	$(FERTF) predict $(IMAGES) $(if $(wildcard $(RUN)/fer_tf_run.json),--model $(RUN))

tensorboard: setup
	TF_CPP_MIN_LOG_LEVEL=3 CUDA_VISIBLE_DEVICES= $(BIN)/tensorboard --logdir $(RUN) --host 127.0.0.1 --port $(PORT) 2>&1 | grep --line-buffered -v -e "TensorRT" -e "cuda" -e "CUDA" -e "oneDNN"

test: setup
	$(BIN)/python -m pytest -q tests

# The tests a full run measured as quick (tests/data/slow_tests.txt lists the rest), for development.
test-quick: setup
	$(BIN)/python -m pytest -q -m "not slow" tests

bench: setup
	$(BIN)/python bench/bench_backbone.py --csv $(DATA)

clean-demo:
	rm -rf demo

# Mutation testing of the core modules (cosmic-ray, in a scratch copy; scores in docs/testing.md).
mutation: setup
	$(BIN)/pip install -q cosmic-ray
	$(BIN)/python tools/mutation.py --json mutation.json

# The models over HTTP and gRPC (docs/serving.md): http://127.0.0.1:8501/
serve: setup
	$(FERTF) serve

# The docs site (MkDocs, Material theme) from docs/ into site/.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
