# Spack recipe for minipt. See run/spack/README.md for how to use it; Spack itself is not
# installed where minipt is developed, so tests/python/test_spack_recipe.py checks this
# file against a small stand-in of Spack's directive API (variants vs. the CMake options,
# cmake_args() per variant combination).
#
# Variants and the CMake options they set (CMakeLists.txt: MINIPT_ENABLE_* = AUTO|ON|OFF;
# the recipe always says ON or OFF, never AUTO, so a build never silently depends on what
# happens to be found):
#   +kokkos  -> MINIPT_ENABLE_KOKKOS  (the kokkos compute backend, host threads)
#   +cuda    -> MINIPT_ENABLE_CUDA    (the cuda backend; cuda_arch -> CMAKE_CUDA_ARCHITECTURES)
#   +nccl    -> no option of its own: every CUDA build of minipt needs NCCL (fsdp's
#               collectives), so MINIPT_ENABLE_CUDA=ON requires it. The variant exists only
#               with +cuda, defaults to on, and ~nccl with +cuda is a conflict; it is there
#               to make the NCCL dependency visible and to pass NCCL_ROOT.
#   +cudnn   -> MINIPT_ENABLE_CUDNN   (compute.attention = cudnn; only with +cuda)

from spack.package import *  # noqa: F401,F403


class Minipt(CMakePackage):
    """Proxy app for long-context LLM training with MPI: FSDP against on-demand
    communication (ODC), with LB-Micro and LB-Mini balancing, HDF5 timelines."""

    # The project has no public download yet: build from a source tree with
    # `spack dev-build` or `spack develop` (run/spack/README.md).
    version("0.1.0")

    # variant name -> the CMake option it sets ON or OFF.
    cmake_options = {
        "kokkos": "MINIPT_ENABLE_KOKKOS",
        "cuda": "MINIPT_ENABLE_CUDA",
        "cudnn": "MINIPT_ENABLE_CUDNN",
    }
    # variant -> the variant whose CMake option covers it (it has none of its own).
    covered_by = {"nccl": "cuda"}

    variant("kokkos", default=False, description="Kokkos compute backend (host threads)")
    variant("cuda", default=False, description="CUDA compute backend (needs NCCL)")
    variant("cuda_arch", default="90", multi=True, when="+cuda",
            values=("70", "75", "80", "86", "89", "90", "100", "120"),
            description="CUDA architectures (CMAKE_CUDA_ARCHITECTURES)")
    variant("nccl", default=True, when="+cuda",
            description="NCCL collectives; required by every CUDA build (~nccl conflicts)")
    variant("cudnn", default=False, when="+cuda",
            description="cuDNN 9 fused attention (compute.attention = cudnn)")

    conflicts("~nccl", when="+cuda", msg="every CUDA build of minipt uses NCCL for fsdp")

    depends_on("cmake@3.25:", type="build")
    depends_on("c", type="build")
    depends_on("cxx", type="build")
    depends_on("mpi")
    depends_on("hdf5")
    depends_on("tomlplusplus")
    depends_on("cli11")
    depends_on("nlohmann-json")
    depends_on("googletest", type="test")
    depends_on("kokkos", when="+kokkos")
    depends_on("cuda", when="+cuda")
    depends_on("nccl", when="+nccl")
    depends_on("cudnn@9:", when="+cudnn")

    def cmake_args(self):
        spec = self.spec
        args = [self.define("MINIPT_BUILD_TESTS", self.run_tests),
                self.define("MINIPT_WERROR", False)]
        for name, option in self.cmake_options.items():
            args.append(self.define(option, "ON" if spec.satisfies("+" + name) else "OFF"))
        if spec.satisfies("+cuda"):
            args.append(self.define("CMAKE_CUDA_ARCHITECTURES",
                                    list(spec.variants["cuda_arch"].value)))
        if spec.satisfies("+nccl"):
            args.append(self.define("NCCL_ROOT", spec["nccl"].prefix))
        if spec.satisfies("+cudnn"):
            args.append(self.define("MINIPT_CUDNN_ROOT", spec["cudnn"].prefix))
            # The header-only cuDNN frontend is not a dependency Spack provides here; give
            # its include directory (run/deps.sh unpacks it into .deps/cudnn-frontend).
            frontend = env.get("CUDNN_FRONTEND_INCLUDE")
            if not frontend:
                raise InstallError("minipt+cudnn needs the cuDNN frontend headers: set "
                                   "CUDNN_FRONTEND_INCLUDE to the directory holding "
                                   "cudnn_frontend.h")
            args.append(self.define("CUDNN_FRONTEND_INCLUDE", frontend))
        return args
