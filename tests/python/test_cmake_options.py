"""CMake options: an optional part set ON whose dependency is missing is a configure error
naming the option, not a silent build without it; a value that is no choice is an error."""

import os
import shutil
import subprocess

import pytest

import minipt_runner as mr

pytestmark = pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")


def configure(tmp_path, *defs):
    return subprocess.run(["cmake", "-S", mr.REPO_ROOT, "-B", str(tmp_path / "b"),
                           "-DMINIPT_BUILD_TESTS=OFF", *defs],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("defs,must", [
    # cuDNN needs a CUDA build: required without one, it cannot be there.
    (["-DMINIPT_ENABLE_CUDA=OFF", "-DMINIPT_ENABLE_CUDNN=ON"],
     ["MINIPT_ENABLE_CUDNN=ON", "cuDNN", "AUTO or OFF"]),
    (["-DMINIPT_ENABLE_KOKKOS=maybe"], ["MINIPT_ENABLE_KOKKOS", "AUTO|ON|OFF"]),
])
def test_required_part_missing_is_a_configure_error(tmp_path, defs, must):
    proc = configure(tmp_path, *defs)
    assert proc.returncode != 0, proc.stdout
    for m in must:
        assert m in proc.stderr, (m, proc.stderr)


def test_kokkos_required_without_kokkos(tmp_path):
    """Kokkos=ON where find_package(Kokkos) finds nothing (pointed at an empty prefix)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = configure(tmp_path, "-DMINIPT_ENABLE_CUDA=OFF", "-DMINIPT_ENABLE_KOKKOS=ON",
                     "-DKokkos_DIR=" + str(empty), "-DCMAKE_DISABLE_FIND_PACKAGE_Kokkos=ON")
    assert proc.returncode != 0, proc.stdout
    assert "MINIPT_ENABLE_KOKKOS=ON" in proc.stderr and "Kokkos" in proc.stderr, proc.stderr


def test_auto_configures(tmp_path):
    proc = configure(tmp_path, "-DMINIPT_ENABLE_CUDA=OFF")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "cuda=OFF" in proc.stdout
    assert os.path.isdir(tmp_path / "b" / "src" / "layers" / "app")


def test_bool_cache_of_an_older_build_directory_reads_as_auto(tmp_path):
    """Before AUTO, the parts were BOOL options whose ON meant "if found": such a cache
    entry configures as AUTO (cuDNN without CUDA: left out, not an error)."""
    proc = configure(tmp_path, "-DMINIPT_ENABLE_CUDA:BOOL=OFF", "-DMINIPT_ENABLE_CUDNN:BOOL=ON")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "cudnn=OFF" in proc.stdout
    with open(tmp_path / "b" / "CMakeCache.txt") as f:
        cache = f.read()
    assert "MINIPT_ENABLE_CUDNN:STRING=AUTO" in cache
    assert "MINIPT_ENABLE_CUDA:STRING=OFF" in cache
