#!/usr/bin/env bash
# Installs what minipt needs on Debian/Ubuntu (as root, or with sudo); elsewhere says
# which packages or modules to load. Idempotent: does nothing when all is present.
#   C++: cmake >= 3.25, ninja, g++ (C++20), OpenMPI (any MPI-3), HDF5 C library +
#        tools, GoogleTest, nlohmann-json 3.11 (header-only), Kokkos (optional: Debian's
#        libtrilinos-kokkos-dev)
#   Python: numpy, h5py, matplotlib, pytest, and the analysis package (analysis/)
#   CUDA (where nvcc is found): the header-only cuDNN frontend, unpacked from its PyPI
#        wheel into .deps/cudnn-frontend (cuDNN itself comes with the CUDA install or a
#        cuDNN wheel); without it the CUDA backend builds with its own attention only
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
have() { command -v "$1" >/dev/null 2>&1; }
have cmake || missing+=(cmake)
have ninja || missing+=(ninja-build)
have g++ || missing+=(g++)
have mpicc || missing+=(libopenmpi-dev)
have mpirun || missing+=(openmpi-bin)
have h5dump || missing+=(hdf5-tools)
[ -e /usr/include/hdf5/serial/hdf5.h ] || [ -e /usr/include/hdf5.h ] || missing+=(libhdf5-dev)
[ -e /usr/include/gtest/gtest.h ] || missing+=(libgtest-dev)
[ -e /usr/include/nlohmann/json.hpp ] || [ -e .deps/nlohmann-json/include/nlohmann/json.hpp ] || missing+=(nlohmann-json3-dev)
[ -e /usr/include/trilinos/Kokkos_Core.hpp ] || [ -n "${MINIPT_NO_KOKKOS:-}" ] || missing+=(libtrilinos-kokkos-dev)
have python3 || missing+=(python3)

if [ ${#missing[@]} -gt 0 ]; then
  if have apt-get; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "deps: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "deps: missing ${missing[*]}; install them (or 'module load' cmake, openmpi, hdf5, kokkos, googletest)" >&2
    exit 1
  fi
fi

py_missing=()
for mod in numpy h5py matplotlib pytest; do
  python3 -c "import $mod" 2>/dev/null || py_missing+=("$mod")
done
pip_flags=()
python3 -m pip install --help 2>/dev/null | grep -q -- --break-system-packages && pip_flags+=(--break-system-packages)
if [ ${#py_missing[@]} -gt 0 ]; then
  python3 -m pip --version >/dev/null 2>&1 || { $SUDO apt-get install -y -qq python3-pip >/dev/null; }
  echo "deps: pip installing ${py_missing[*]}"
  python3 -m pip install -q "${pip_flags[@]}" "${py_missing[@]}"
fi
if [ -f analysis/pyproject.toml ] && ! python3 -c "import minipt_analysis" 2>/dev/null; then
  echo "deps: pip installing the analysis package (editable)"
  python3 -m pip install -q "${pip_flags[@]}" -e analysis
fi

frontend=.deps/cudnn-frontend
if { have nvcc || [ -x /usr/local/cuda/bin/nvcc ]; } && [ ! -f "$frontend/include/cudnn_frontend.h" ]; then
  echo "deps: fetching the cuDNN frontend headers (nvidia-cudnn-frontend ${CUDNN_FRONTEND_VERSION:-1.32.0}) into $frontend"
  tmp=$(mktemp -d)
  if python3 -m pip download -q --no-deps -d "$tmp" "nvidia-cudnn-frontend==${CUDNN_FRONTEND_VERSION:-1.32.0}" &&
     python3 - "$tmp" "$frontend" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith("include/")])
PY
  then :; else
    echo "deps: could not fetch the cuDNN frontend; the CUDA backend builds with its own attention only" >&2
  fi
  rm -rf "$tmp"
fi
