#!/usr/bin/env bash
# One-shot GPU check of the encoder (issue 3) and of routing end to end (issue 13): builds a
# minimal encoder benchmark against the CUDA libtorch of the python torch wheel, regenerates
# the tiny parity fixture with HF transformers, checks C++ parity against it, and times
# bf16 batch 1 / batch 32; then builds bench/gpu/router_gpu_bench.cpp and times
# NeuralRouter::score (tokenize + encoder + heads) at batch 1 and 32 on the CPU and on CUDA in
# fp32, bf16 and bf16 + CUDA graphs, with the scores' distance to the CPU fp32 router.
# Runs in the repo root; needs python3 + torch (+ transformers for the fixture), g++, no
# internet, no cmake, no yaml/Eigen/benchmark. The router part also needs the header-only
# nlohmann-json and fmt (searched in $NLOHMANN_INC / $FMT_INC, bench/gpu/deps/include, the torch
# wheel's include dir, /usr/include, /usr/local/include; skipped with a message when absent).
# Fails soft: each step reports and the script goes on. Everything is logged to $OUT (default
# ./gpu-out); the router lines are also collected in $OUT/router_bench.txt.
# STEPS="encoder router" (default) runs both parts; STEPS=router only the router part.
# Budget: ~2 min build (16 cores), ~1 min fixture + parity, ~2 min encoder benchmarks,
# ~2 min router benchmarks (each run capped at 60 s).
set -u
STEPS=${STEPS:-encoder router}
want() { case " $STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
LOG="$OUT/gpu_run.log"
exec > >(tee -a "$LOG") 2>&1
PY=${PYTHON:-python3}
ROOT=$(pwd)
BUILD="$OUT/build"
mkdir -p "$BUILD"
t0=$(date +%s)
step() { echo; echo "=== [$(( $(date +%s) - t0 ))s] $*"; }

step "environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "nvidia-smi: unavailable"
nproc; g++ --version | head -1
$PY - <<'PY' || echo "python torch: unavailable"
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
try:
    import transformers; print("transformers", transformers.__version__)
except Exception as e: print("transformers: not importable:", e)
PY

FIX_PID=""
if want encoder; then
  step "fixture: regenerate with HF transformers (background)"
  ( $PY tools/encoder-golden/make_fixture.py --backend transformers --out "$OUT/encoder-fixture" > "$OUT/fixture.log" 2>&1; echo "rc=$?" >> "$OUT/fixture.log" ) &
  FIX_PID=$!
fi

step "locate libtorch"
eval "$($PY - <<'PY'
import os, sys, glob, torch
base = os.path.dirname(torch.__file__)
inc = [os.path.join(base, "include"), os.path.join(base, "include", "torch", "csrc", "api", "include")]
lib = os.path.join(base, "lib")
abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
cuda_inc = ""
cands = [os.environ.get("CUDA_HOME", "") + "/include", "/usr/local/cuda/include"]
for sp in sys.path:
    cands += glob.glob(os.path.join(sp, "nvidia", "cuda_runtime", "include"))
for c in cands:
    if c and os.path.exists(os.path.join(c, "cuda_runtime_api.h")):
        cuda_inc = c; break
extra = []
for sp in sys.path:  # other pip CUDA headers some c10/ATen cuda headers may want
    for sub in ("cuda_nvrtc", "cublas", "cusparse", "cudnn", "nvtx"):
        extra += glob.glob(os.path.join(sp, "nvidia", sub, "include"))
print(f'TORCH_INC="{" ".join("-isystem " + i for i in inc)}"')
print(f'TORCH_LIB="{lib}"')
print(f'TORCH_ABI={abi}')
print(f'CUDA_INC="{cuda_inc}"')
print(f'CUDA_EXTRA_INC="{" ".join("-isystem " + e for e in extra)}"')
print(f'TORCH_BASE_INC="{inc[0]}"')
print(f'HAS_TORCH_CUDA={int(os.path.exists(os.path.join(lib, "libtorch_cuda.so")))}')
cudart = sorted(glob.glob(os.path.join(lib, "libcudart*.so*")))
for sp in sys.path:
    cudart += sorted(glob.glob(os.path.join(sp, "nvidia", "*", "lib", "libcudart.so*")))
    cudart += sorted(glob.glob(os.path.join(sp, "nvidia", "cuda_runtime", "lib", "libcudart.so*")))
cudart += sorted(glob.glob("/usr/local/cuda/lib64/libcudart.so*"))
print(f'CUDART="{cudart[0] if cudart else ""}"')
PY
)"
# Local dry runs (Debian libtorch keeps headers outside the python package) may override:
[ -n "${OVERRIDE_TORCH_INC:-}" ] && TORCH_INC=$OVERRIDE_TORCH_INC
[ -n "${OVERRIDE_TORCH_LIB:-}" ] && TORCH_LIB=$OVERRIDE_TORCH_LIB
echo "TORCH_LIB=${TORCH_LIB:-?} ABI=${TORCH_ABI:-?} CUDA_INC=${CUDA_INC:-none} HAS_TORCH_CUDA=${HAS_TORCH_CUDA:-0}"

step "build (g++ -O2, parallel)"
CXX=${CXX:-g++}
FLAGS="-std=c++17 -O2 -DNDEBUG -fPIC -D_GLIBCXX_USE_CXX11_ABI=${TORCH_ABI:-1} -DROUTENLP_HAVE_TORCH=1 -DROUTENLP_ENCODER_NO_TOKENIZER=1 -Iinclude -Ilib -Icapi/include ${TORCH_INC:-} -w"
SRCS="lib/common/error.cpp lib/common/atomic_file.cpp lib/common/text_io.cpp lib/common/utf8.cpp lib/encoder/json_lite.cpp lib/encoder/safetensors.cpp lib/encoder/config.cpp lib/encoder/distilbert.cpp bench/gpu/encoder_gpu_bench.cpp"
pids=()
for s in $SRCS; do
  o="$BUILD/$(echo "$s" | tr / _).o"
  ( $CXX $FLAGS -c "$s" -o "$o" 2> "$o.err" || echo "COMPILE FAILED: $s (see $o.err)" ) & pids+=($!)
done
# The encoder's own CPU kernels: per-ISA flags (as lib/encoder/CMakeLists.txt).
KSRCS="lib/encoder/cpu_kernels.cpp lib/encoder/cpu_pool.cpp lib/encoder/cpu_kernels_avx2.cpp lib/encoder/cpu_kernels_avx512.cpp"
kflags() {
  case "$1" in
    *_avx2.cpp) echo "-mavx2 -mfma -fno-tree-vectorize" ;;
    *_avx512.cpp) echo "-mavx512f -mavx2 -mfma -fno-tree-vectorize" ;;
    *cpu_kernels.cpp) echo "-DROUTENLP_CPU_KERNELS_X86=1" ;;
    *) echo "" ;;
  esac
}
for s in $KSRCS; do
  o="$BUILD/$(echo "$s" | tr / _).o"
  ( $CXX $FLAGS $(kflags "$s") -c "$s" -o "$o" 2> "$o.err" || echo "COMPILE FAILED: $s (see $o.err)" ) & pids+=($!)
done
# encoder.cpp twice: with CUDA graphs (needs cuda_runtime_api.h) and without.
( $CXX $FLAGS -c lib/encoder/encoder.cpp -o "$BUILD/encoder_plain.o" 2> "$BUILD/encoder_plain.err" || echo "COMPILE FAILED: encoder.cpp (plain)" ) & pids+=($!)
if [ -n "${CUDA_INC:-}" ]; then
  ( $CXX $FLAGS -DROUTENLP_WITH_CUDA_GRAPHS=1 -isystem "$CUDA_INC" ${CUDA_EXTRA_INC:-} -c lib/encoder/encoder.cpp -o "$BUILD/encoder_graphs.o" 2> "$BUILD/encoder_graphs.err" || echo "COMPILE FAILED: encoder.cpp (CUDA graphs)" ) & pids+=($!)
fi
# Router benchmark: the router, tokenizer and config sources on top of the encoder's objects.
# Header-only nlohmann-json and fmt are needed; neural_router.cpp and the benchmark are built
# twice (with and without CUDA graphs: the graph cache changes the router's internal layout).
find_inc() {  # $1: header to find, $2: explicit directory (may be empty)
  for d in "$2" "$ROOT/bench/gpu/deps/include" "${TORCH_BASE_INC:-}" /usr/include /usr/local/include; do
    [ -n "$d" ] && [ -f "$d/$1" ] && { echo "$d"; return 0; }
  done
  return 1
}
ROUTER_OK=0
if want router; then
  J_INC=$(find_inc nlohmann/json.hpp "${NLOHMANN_INC:-}") || J_INC=""
  F_INC=$(find_inc fmt/format.h "${FMT_INC:-}") || F_INC=""
  echo "router headers: nlohmann=${J_INC:-MISSING} fmt=${F_INC:-MISSING}"
  if [ -n "$J_INC" ] && [ -n "$F_INC" ]; then
    ROUTER_OK=1
    RFLAGS="$FLAGS -DFMT_HEADER_ONLY=1 -isystem $J_INC -isystem $F_INC"
    RSRCS="lib/text/wordpiece.cpp lib/text/unicode.cpp lib/router/router_config.cpp"
    for s in $RSRCS; do
      o="$BUILD/$(echo "$s" | tr / _).o"
      ( $CXX $RFLAGS -c "$s" -o "$o" 2> "$o.err" || echo "COMPILE FAILED: $s (see $o.err)" ) & pids+=($!)
    done
    for s in lib/router/neural_router.cpp bench/gpu/router_gpu_bench.cpp; do
      o="$BUILD/$(echo "$s" | tr / _)"
      ( $CXX $RFLAGS -c "$s" -o "$o.plain.o" 2> "$o.plain.err" || echo "COMPILE FAILED: $s (plain)" ) & pids+=($!)
      if [ -n "${CUDA_INC:-}" ]; then
        ( $CXX $RFLAGS -DROUTENLP_WITH_CUDA_GRAPHS=1 -isystem "$CUDA_INC" ${CUDA_EXTRA_INC:-} -c "$s" -o "$o.graphs.o" 2> "$o.graphs.err" || echo "COMPILE FAILED: $s (CUDA graphs)" ) & pids+=($!)
      fi
    done
  else
    echo "router benchmark skipped: copy the nlohmann/ and fmt/ header directories (e.g. from a"
    echo "Debian machine's /usr/include) into bench/gpu/deps/include/, or set NLOHMANN_INC / FMT_INC"
  fi
fi
for p in "${pids[@]}"; do wait "$p"; done
for e in "$BUILD"/*.err; do [ -s "$e" ] && { echo "--- $e"; head -c 3000 "$e"; }; done
LIBS="-L${TORCH_LIB:-.} -Wl,-rpath,${TORCH_LIB:-.} -Wl,--no-as-needed -ltorch -ltorch_cpu -lc10"
[ "${HAS_TORCH_CUDA:-0}" = 1 ] && LIBS="$LIBS -ltorch_cuda -lc10_cuda"
LIBS="$LIBS -Wl,--as-needed -lpthread"
COMMON_O=""
for s in $SRCS $KSRCS; do COMMON_O="$COMMON_O $BUILD/$(echo "$s" | tr / _).o"; done
BIN_PLAIN="$BUILD/encoder_gpu_bench"; BIN_GRAPHS="$BUILD/encoder_gpu_bench_graphs"
$CXX -o "$BIN_PLAIN" $COMMON_O "$BUILD/encoder_plain.o" $LIBS 2> "$BUILD/link_plain.err" || { echo "LINK FAILED (plain)"; head -c 3000 "$BUILD/link_plain.err"; }
if [ -f "$BUILD/encoder_graphs.o" ]; then
  echo "cudart for the CUDA-graph binary: ${CUDART:-none}"
  $CXX -o "$BIN_GRAPHS" $COMMON_O "$BUILD/encoder_graphs.o" $LIBS ${CUDART:+-Wl,--no-as-needed $CUDART -Wl,-rpath,$(dirname "${CUDART:-x}")} 2> "$BUILD/link_graphs.err" || { echo "LINK FAILED (graphs)"; head -c 3000 "$BUILD/link_graphs.err"; }
fi
RBIN_PLAIN="$BUILD/router_gpu_bench"; RBIN_GRAPHS="$BUILD/router_gpu_bench_graphs"
if [ "$ROUTER_OK" = 1 ]; then
  ROBJ="$COMMON_O"
  for s in $RSRCS; do ROBJ="$ROBJ $BUILD/$(echo "$s" | tr / _).o"; done
  NR="$BUILD/lib_router_neural_router.cpp"; RB="$BUILD/bench_gpu_router_gpu_bench.cpp"
  $CXX -o "$RBIN_PLAIN" $ROBJ "$NR.plain.o" "$RB.plain.o" $LIBS 2> "$BUILD/link_router_plain.err" || { echo "LINK FAILED (router, plain)"; head -c 3000 "$BUILD/link_router_plain.err"; }
  if [ -f "$NR.graphs.o" ] && [ -f "$RB.graphs.o" ]; then
    $CXX -o "$RBIN_GRAPHS" $ROBJ "$NR.graphs.o" "$RB.graphs.o" $LIBS ${CUDART:+-Wl,--no-as-needed $CUDART -Wl,-rpath,$(dirname "${CUDART:-x}")} 2> "$BUILD/link_router_graphs.err" || { echo "LINK FAILED (router, graphs)"; head -c 3000 "$BUILD/link_router_graphs.err"; }
  fi
  ls -la "$BUILD"/router_gpu_bench* 2>/dev/null
fi
BIN="$BIN_PLAIN"; [ -x "$BIN_GRAPHS" ] && BIN="$BIN_GRAPHS"
ls -la "$BUILD"/encoder_gpu_bench* 2>/dev/null
DEV=cuda
$PY -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null || DEV=cpu
echo "device for the runs: $DEV; binary: $BIN"

run() { echo "+ $*"; timeout 120 "$@" || echo "(failed rc=$?)"; }
run60() { echo "+ $*"; timeout 60 "$@" || echo "(failed rc=$?)"; }

if want encoder; then
step "fixture: wait for HF regeneration"
wait "$FIX_PID"; cat "$OUT/fixture.log"
FIX="$OUT/encoder-fixture"
[ -f "$FIX/expected.json" ] || { echo "HF fixture missing; using the committed one"; FIX=tests/data/encoder/tiny; }

step "parity (C++ vs $(grep -o '"backend":"[a-z]*"' "$FIX/expected.json" | head -1))"
[ -x "$BIN" ] && timeout 120 "$BIN" parity "$FIX" cpu
[ -x "$BIN" ] && [ "$DEV" = cuda ] && timeout 120 "$BIN" parity "$FIX" cuda

step "benchmarks: distilbert-base shapes (targets: bf16 b1 s64 p50 <= 0.5 ms; b32 s64 >= 30000 seq/s)"
if [ -x "$BIN" ]; then
  if [ -x "$BIN_GRAPHS" ] && [ "$DEV" = cuda ]; then
    run "$BIN_GRAPHS" bench cuda bf16 1 1 64 1000
    run "$BIN_GRAPHS" bench cuda bf16 1 32 64 300
    run "$BIN_GRAPHS" bench cuda fp16 1 1 64 1000
    run "$BIN_GRAPHS" bench cuda fp16 1 32 64 300
    run "$BIN_GRAPHS" bench cuda bf16 1 1 32 1000
    run "$BIN_GRAPHS" bench cuda bf16 1 1 128 1000
    run "$BIN_GRAPHS" bench cuda bf16 1 1 64 1000 small
  fi
  if [ "$DEV" = cuda ]; then
    run "$BIN" bench cuda bf16 0 1 64 300
    run "$BIN" bench cuda bf16 0 32 64 200
    run "$BIN" bench cuda fp32 0 1 64 300
    run "$BIN" bench cuda fp32 0 32 64 100
  else  # no GPU: a quick smoke run of the binary
    run "$BIN" bench cpu fp32 0 1 64 20 small
    run "$BIN" bench cpu bf16 0 1 64 20 small
  fi
fi

step "python eager peer on the GPU (same shapes, random weights)"
if [ "$DEV" = cuda ]; then
  run $PY bench/peers/encoder_peer.py --device cuda --dtype bf16 --batch 1 --seq 64 --iters 300
  run $PY bench/peers/encoder_peer.py --device cuda --dtype bf16 --batch 32 --seq 64 --iters 100
else
  run $PY bench/peers/encoder_peer.py --config small --device cpu --dtype fp32 --batch 1 --seq 64 --iters 10
fi
fi  # encoder

if want router; then
step "router end to end: NeuralRouter::score, batch 1 and 32 (small = bundled router, base = distilbert-base)"
if [ -x "$RBIN_PLAIN" ]; then
  VOCAB=data/vocab/bert-base-uncased-vocab.txt
  for cfg in small base; do
    [ "$DEV" = cuda ] || [ "$cfg" = small ] || break  # without a GPU only a smoke run of small
    run60 "$RBIN_PLAIN" make "$BUILD/router-$cfg" "$cfg" "$VOCAB" || continue
    D="$BUILD/router-$cfg"
    if [ "$DEV" = cuda ]; then
      run60 "$RBIN_PLAIN" bench "$D" cpu fp32 0 1 30
      run60 "$RBIN_PLAIN" bench "$D" cpu fp32 0 32 5
      run60 "$RBIN_PLAIN" bench "$D" cuda fp32 0 1 300
      run60 "$RBIN_PLAIN" bench "$D" cuda fp32 0 32 100
      run60 "$RBIN_PLAIN" bench "$D" cuda bf16 0 1 300
      run60 "$RBIN_PLAIN" bench "$D" cuda bf16 0 32 100
      if [ -x "$RBIN_GRAPHS" ]; then
        run60 "$RBIN_GRAPHS" bench "$D" cuda bf16 1 1 500
        run60 "$RBIN_GRAPHS" bench "$D" cuda bf16 1 32 200
        run60 "$RBIN_GRAPHS" bench "$D" auto bf16 1 1 200   # "auto" resolves to cuda:0 here
      fi
    else  # no GPU: smoke runs, and "auto" must fall back to the CPU fp32 path
      run60 "$RBIN_PLAIN" bench "$D" cpu fp32 0 1 5
      run60 "$RBIN_PLAIN" bench "$D" auto bf16 0 1 5
    fi
  done
  grep '^router:' "$LOG" > "$OUT/router_bench.txt" 2>/dev/null
  echo "router lines: $OUT/router_bench.txt"
else
  echo "router benchmark binary missing (see the build step); skipped"
fi
fi  # router

step "done in $(( $(date +%s) - t0 ))s; log: $LOG; HF fixture: $OUT/encoder-fixture; router: $OUT/router_bench.txt"
# keep only the log and the HF fixture in $OUT (few files: the device tool limits the count)
[ -z "${KEEP_BUILD:-}" ] && rm -rf "$BUILD"
exit 0
