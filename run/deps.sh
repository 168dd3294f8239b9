#!/usr/bin/env bash
# Installs what minipt needs on Debian/Ubuntu (as root, or with sudo); elsewhere says
# which packages or modules to load. Idempotent: does nothing when all is present.
#   C++: cmake >= 3.25, ninja, g++ (C++20), OpenMPI (any MPI-3), HDF5 C library +
#        tools, GoogleTest, Kokkos (optional: Debian's libtrilinos-kokkos-dev)
#   Header-only C++: toml++, CLI11, nlohmann/json (libtomlplusplus-dev, libcli11-dev,
#        nlohmann-json3-dev): installed as root; otherwise, or also with
#        MINIPT_DEPS_LOCAL=1, unpacked (apt-get download + dpkg -x) into
#        .deps/{tomlplusplus,cli11,nlohmann-json}/include, where CMake looks next
#   Trace export (optional: their tests skip without them): otf2-tools (otf2-print) and
#        python3-otf2 from Debian where apt-get works; `otf2` from PyPI when the python3 in
#        use cannot import Debian's module (another interpreter); holistictraceanalysis
#        (and psutil, which it imports) from PyPI
#   Slurm (optional: tests/python/test_slurm.py skips without it): slurm-wlm and munge
#        from Debian, as root where apt-get works; the test starts its own daemons
#   Python: numpy, h5py, matplotlib, pytest, jsonschema, wheel (offline pip builds), and
#        the analysis package (analysis/), editable from THIS checkout (reinstalled when
#        `import minipt_analysis` finds another tree's). Checked and installed for the
#        python3 in use: Debian's python3-* packages where that is Debian's /usr/bin/python3,
#        pip otherwise (a pyenv or venv python3 cannot import Debian's modules)
#   Benchmark harnesses (optional: their tests skip, saying so, without them): JUBE
#        (Debian's jube) and ReFrame (reframe-hpc from PyPI, for the python3 in use)
#   CUDA (where nvcc is found): the header-only cuDNN frontend, unpacked from its PyPI
#        wheel into .deps/cudnn-frontend (cuDNN itself comes with the CUDA install or a
#        cuDNN wheel); without it the CUDA backend builds with its own attention only
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
have() { command -v "$1" >/dev/null 2>&1; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# Debian's python3-* packages serve Debian's interpreter only (sys.prefix /usr); for any
# other python3 (pyenv, venv, conda) the Python modules come from pip, for that python3.
# py_lacks MOD...: the modules the python3 in use cannot find, one a line (one call,
# nothing imported: find_spec only).
py_lacks() {
  python3 - "$@" <<'PY' 2>/dev/null || printf '%s\n' "$@"
import importlib.util, sys
for m in sys.argv[1:]:
    try:
        found = importlib.util.find_spec(m) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        print(m)
PY
}
py_debian=0
if have python3 && [ "$(python3 -c 'import sys; print(sys.prefix)' 2>/dev/null)" = /usr ]; then
  py_debian=1
fi
have cmake || missing+=(cmake)
have ninja || missing+=(ninja-build)
have g++ || missing+=(g++)
have mpicc || missing+=(libopenmpi-dev)
have mpirun || missing+=(openmpi-bin)
have h5dump || missing+=(hdf5-tools)
[ -e /usr/include/hdf5/serial/hdf5.h ] || [ -e /usr/include/hdf5.h ] || missing+=(libhdf5-dev)
[ -e /usr/include/gtest/gtest.h ] || missing+=(libgtest-dev)
[ -e /usr/include/trilinos/Kokkos_Core.hpp ] || [ -n "${MINIPT_NO_KOKKOS:-}" ] || missing+=(libtrilinos-kokkos-dev)
have python3 || missing+=(python3)
have otf2-print || missing+=(otf2-tools)
[ -e /usr/lib/python3/dist-packages/otf2/__init__.py ] || missing+=(python3-otf2)
# JSON Schema checks of the run summary (tests/python/test_summary_schema.py) and wheel for
# an offline pip build of analysis/ (tests/python/test_install.py): Debian's packages for
# Debian's python3, pip below for another.
if [ "$py_debian" = 1 ] && [ "$(id -u)" -eq 0 ] && have apt-get; then
  for mod in $(py_lacks jsonschema wheel); do missing+=("python3-$mod"); done
fi

# Header-only libraries: "dir in .deps | Debian package | header under include/".
header_libs=("tomlplusplus|libtomlplusplus-dev|toml++/toml.h" "cli11|libcli11-dev|CLI/CLI.hpp"
             "nlohmann-json|nlohmann-json3-dev|nlohmann/json.hpp")
if [ "$(id -u)" -eq 0 ] && have apt-get && [ "${MINIPT_DEPS_LOCAL:-0}" != 1 ]; then
  for lib in "${header_libs[@]}"; do
    IFS='|' read -r _dir pkg header <<<"$lib"
    [ -e "/usr/include/$header" ] || missing+=("$pkg")
  done
fi

if [ ${#missing[@]} -gt 0 ]; then
  if have apt-get; then
    echo "deps: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "deps: missing ${missing[*]}; install them (or 'module load' cmake, openmpi, hdf5, kokkos, googletest)" >&2
    exit 1
  fi
fi

# Slurm for tests/python/test_slurm.py, which runs its own slurmctld, slurmd and munged
# (none of the packages' services is needed). Optional: a failed install only makes the
# test skip.
if [ "$(id -u)" -eq 0 ] && have apt-get && { ! have slurmctld || ! have slurmd || ! have munged; }; then
  echo "deps: installing slurm-wlm munge (optional: the Slurm test)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends slurm-wlm munge >/dev/null; } ||
    echo "deps: could not install slurm-wlm and munge; tests/python/test_slurm.py will skip" >&2
fi

# Headers still missing from /usr/include (no root, no apt-get install), or all of them
# with MINIPT_DEPS_LOCAL=1: the Debian package's usr/include, unpacked into .deps/.
apt_opts=()
[ "$(id -u)" -ne 0 ] || apt_opts=(-o APT::Sandbox::User=root)  # root: no _apt sandbox warning
for lib in "${header_libs[@]}"; do
  IFS='|' read -r dir pkg header <<<"$lib"
  dest=".deps/$dir"
  if [ -e "$dest/include/$header" ]; then continue; fi
  if [ -e "/usr/include/$header" ] && [ "${MINIPT_DEPS_LOCAL:-0}" != 1 ]; then continue; fi
  echo "deps: unpacking $pkg into $dest"
  tmp=$(mktemp -d)
  if have apt-get && have dpkg && (cd "$tmp" && apt-get download -qq "${apt_opts[@]}" "$pkg" >/dev/null) &&
     dpkg -x "$tmp"/"$pkg"_*.deb "$tmp/root" && [ -e "$tmp/root/usr/include/$header" ]; then
    rm -rf "$dest"
    mkdir -p "$dest"
    cp -r "$tmp/root/usr/include" "$dest/include"
  else
    echo "deps: could not unpack $pkg (needs apt-get download and dpkg); install it, or put" \
         "its headers in $dest/include" >&2
    [ "$dir" != tomlplusplus ] || { rm -rf "$tmp"; exit 1; }
  fi
  rm -rf "$tmp"
done

# JUBE (run/jube/, tests/python/test_jube.py). Optional: a failed install makes the test skip.
if [ "$(id -u)" -eq 0 ] && have apt-get && ! have jube; then
  echo "deps: installing jube (optional: the JUBE benchmark script)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends jube >/dev/null; } ||
    echo "deps: could not install jube; tests/python/test_jube.py will skip" >&2
fi

mapfile -t py_missing < <(py_lacks numpy h5py matplotlib pytest jsonschema wheel)
pip_flags=()
python3 -m pip install --help 2>/dev/null | grep -q -- --break-system-packages && pip_flags+=(--break-system-packages)
if [ ${#py_missing[@]} -gt 0 ]; then
  python3 -m pip --version >/dev/null 2>&1 || { $SUDO apt-get install -y -qq python3-pip >/dev/null; }
  echo "deps: pip installing ${py_missing[*]}"
  python3 -m pip install -q "${pip_flags[@]}" "${py_missing[@]}"
fi
trace_missing=()
for mod in $(py_lacks otf2 hta psutil); do
  case $mod in otf2) trace_missing+=(otf2) ;; hta) trace_missing+=(holistictraceanalysis) ;;
               psutil) trace_missing+=(psutil) ;; esac
done
if [ ${#trace_missing[@]} -gt 0 ]; then
  echo "deps: pip installing ${trace_missing[*]} (trace export)"
  python3 -m pip install -q "${pip_flags[@]}" "${trace_missing[@]}" ||
    echo "deps: could not install ${trace_missing[*]}; the otf2 / HTA tests will skip" >&2
fi
# ReFrame (run/reframe/, tests/python/test_reframe.py), for the python3 in use. Optional.
if [ -n "$(py_lacks reframe)" ]; then
  echo "deps: pip installing reframe-hpc (optional: the ReFrame check)"
  python3 -m pip install -q "${pip_flags[@]}" reframe-hpc ||
    echo "deps: could not install reframe-hpc; tests/python/test_reframe.py will skip" >&2
fi
# The analysis package, editable from this checkout: minipt-analyze must run this tree's
# code, so an install of another checkout (or a copy) is replaced.
if [ -f analysis/pyproject.toml ]; then
  here=$(cd analysis/minipt_analysis && pwd -P)
  found=$(cd / && python3 -c "import importlib.util as u, os; s = u.find_spec('minipt_analysis')
print(os.path.dirname(os.path.realpath(s.origin)) if s and s.origin else '')" 2>/dev/null || true)
  if [ "$found" != "$here" ]; then
    echo "deps: pip installing the analysis package of this checkout (editable)${found:+, replacing the one in $found}"
    python3 -m pip install -q "${pip_flags[@]}" -e analysis
  fi
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
