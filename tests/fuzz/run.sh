#!/usr/bin/env bash
# Builds the libFuzzer target of the configuration parser with clang (address and
# undefined-behaviour sanitizers) and fuzzes it for FUZZ_SECONDS (default 60), seeded
# with every TOML file under inputs/. NDEBUG as in the shipped builds: toml++ asserts on
# some malformed keys in debug builds (its release path reports them as parse errors).
# Exit 0: nothing found; non-zero: libFuzzer's crash
# report and the input are in build/fuzz/. Skips (exit 0, saying why) without clang's
# libFuzzer. Run from the repository root: tests/fuzz/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-60}
cxx=${FUZZ_CXX:-$(command -v clang++ || command -v clang++-14 || true)}
out=build/fuzz
mkdir -p "$out/corpus"
probe="$out/probe.cpp"
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' >"$probe"
if [ -z "$cxx" ] || ! "$cxx" -fsanitize=fuzzer "$probe" -o "$out/probe" 2>/dev/null; then
  echo "fuzz: skipped (no clang++ with libFuzzer; install clang)"
  exit 0
fi
inc=()  # toml++ from the system, else from .deps/ (run/deps.sh)
[ -e /usr/include/toml++/toml.h ] || inc+=(-isystem .deps/tomlplusplus/include)
"$cxx" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -DNDEBUG -DTOML_HEADER_ONLY=1 -DTOML_EXCEPTIONS=1 -Isrc "${inc[@]}" \
  tests/fuzz/fuzz_toml.cpp src/config/toml.cpp -o "$out/fuzz_toml"
find inputs -name '*.toml' -exec cp {} "$out/corpus/" \;
cd "$out"
./fuzz_toml -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 corpus 2>&1 | tail -15
