#!/usr/bin/env bash
# Installs what is missing (Debian 12, apt), then configures and builds plait in build/.
# Extra arguments go to CMake's configure step (e.g. -DPLAIT_WITH_TORCH=OFF).
set -euo pipefail
cd "$(dirname "$0")/.."

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

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
# -j2: a file including <torch/torch.h> needs ~1 GB of RAM to compile.
cmake --build build -j2
