# Sourced by the shell tools: picks the interpreter and puts the checkout on PYTHONPATH.
# Order: $PYTHON, the active virtual environment, the checkout's .venv, python3.
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ -n "${PYTHON:-}" ]; then
    python_bin=$PYTHON
elif [ -n "${VIRTUAL_ENV:-}" ]; then
    python_bin=$VIRTUAL_ENV/bin/python
elif [ -x "$repo_root/.venv/bin/python" ]; then
    python_bin=$repo_root/.venv/bin/python
else
    python_bin=python3
fi
export PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}"
