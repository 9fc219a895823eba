#!/usr/bin/env bash
# Create the package root's .venv (if missing) and install the official
# Huawei Cloud Python SDK that tests/sdk_interop.rs compares the signer with.
# Safe to run again: it reuses the venv and pip skips what is installed.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
package_root="$(cd "$script_dir/../.." && pwd)"
venv="$package_root/.venv"

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi

"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --requirement "$script_dir/requirements.txt"
