#!/usr/bin/env bash
# The device check on a lent GPU machine, prepared with the GPU kit (`../shared/gpu/README.md`: `.whl/` from
# fetch-wheels.sh; the worlds copied without their caches into `.gpu/`, both carried):
#   bench_fisher.py --device cuda, `make bench-quick` on the GPU, then the ZeRO-3 + EWC GPU test.
# Logs and the bench tables land in $OUT (8 files at most come back).
set -o pipefail
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT" data
if [ -d .gpu ]; then cp -r .gpu/* data/; fi
nvidia-smi -L 2>&1 | tee "$OUT/gpu.txt"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site || exit
python3 .whl/check_env.py --hook /tmp/site --freeze "$OUT/image-freeze.txt" 2>&1 | tee "$OUT/env.txt"
for w in data/testbed data/testbed-small; do [ -f $w/world.json ] || echo "WARNING: $w not carried"; done
timeout 80 python3 scripts/benchmarks/bench_fisher.py --device cuda 2>&1 | tee "$OUT/bench_fisher.log"
fisher=$?
timeout 220 python3 scripts/benchmarks/bench.py --quick --device cuda --out "$OUT/bench" 2>&1 | tee "$OUT/bench.log"
bench=$?
timeout 170 python3 -m pytest -x -q -ra -p no:cacheprovider tests/test_trainers.py -k gpu 2>&1 | tee "$OUT/pytest.log"
tests=$?
echo "bench_fisher rc=$fisher bench-quick rc=$bench pytest rc=$tests"
exit $((fisher || bench || tests))
