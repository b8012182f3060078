# The two commands a researcher needs: `make demo` and `make test` (both install first if needed).
PYTHON_ENV = $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV)/bin/python,.venv/bin/python)
PYTEST_ARGS ?=

.PHONY: install test demo toy-data

install:
	bash tools/install/install.sh

toy-data: install
	$(PYTHON_ENV) tools/dataset/make_toy_dataset.py --out dataset/toy --seed 0 --replace-other-sizes

test: install
	$(PYTHON_ENV) -m pytest tests $(PYTEST_ARGS)

demo: install toy-data
	$(PYTHON_ENV) tools/demo.py
