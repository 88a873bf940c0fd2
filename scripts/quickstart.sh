#!/usr/bin/env bash
# quickstart.sh: set everything up and run strata's main job on a built-in
# default: make a small demo model (random weights, no download) and
# generate text from it, printing the speed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
mkdir -p build/demo
if [ ! -f build/demo/demo.gguf ]; then
	build/tools/strata mkmodel build/demo/demo.gguf --shape tiny --type q8_0 --seed 1
fi
build/tools/strata info -m build/demo/demo.gguf
echo
build/tools/strata run -m build/demo/demo.gguf -p "Once upon a time" -n 64 --seed 42
# With the real trained model beside the project, tell a story too.
if [ -f ../shared/models/stories260K/stories260K.gguf ]; then
	echo
	build/tools/strata run -m ../shared/models/stories260K/stories260K.gguf -p "Once upon a time" -n 128 --temp 0
fi
