#!/usr/bin/env bash
# Installs what is missing (Debian 12, apt), then configures and builds plait in build/.
# --main-job (first argument): build only what scripts/main-job.sh runs (plait,
# plait-exec, plait-bench), not the tests, benchmarks or sanitizer tree.
# Extra arguments go to CMake's configure step (e.g. -DPLAIT_WITH_TORCH=OFF).
set -euo pipefail
cd "$(dirname "$0")/.."
targets=()
if [ "${1:-}" = --main-job ]; then
  shift
  targets=(--target plait plait-exec plait-bench)
  PLAIT_SANITIZE_BUILD=0
fi

packages=(g++ cmake ninja-build pkg-config ccache libtorch-dev libopenblas0-openmp libsimgrid-dev
          libopenmpi-dev openmpi-bin nlohmann-json3-dev libbenchmark-dev libgtest-dev libgmock-dev
          libcli11-dev libspdlog-dev libfmt-dev zlib1g-dev gnuplot-nox dataset-fashion-mnist fortunes)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The sanitizer tree build-asan (AddressSanitizer + UndefinedBehaviorSanitizer, the
# code that needs no torch) is built too, unless PLAIT_SANITIZE_BUILD=0; ctest's
# `sanitize` test runs its unit and fuzz tests.
sanitize_tree=""
[ "${PLAIT_SANITIZE_BUILD:-1}" = 0 ] || sanitize_tree="$PWD/build-asan"

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPLAIT_SANITIZE_TREE="$sanitize_tree" "$@" >/dev/null
# -j2: a file including <torch/torch.h> needs ~1 GB of RAM to compile.
cmake --build build -j2 "${targets[@]}"

if [ -n "$sanitize_tree" ]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
        -DPLAIT_SANITIZE=ON -DPLAIT_WITH_TORCH=OFF -DPLAIT_WITH_MPI=OFF -DPLAIT_WITH_SIMGRID=ON \
        -DPLAIT_BUILD_BENCHMARKS=OFF >/dev/null
  cmake --build build-asan -j2
fi
