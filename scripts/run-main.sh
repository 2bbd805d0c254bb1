#!/usr/bin/env bash
# Fresh Debian 12 machine -> dependencies installed, routenlp built, the main job run on the
# bundled defaults. (Interim: a smoke run of the CLI until `routenlp eval` lands.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
./build/cli/routenlp doctor
