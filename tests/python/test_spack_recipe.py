"""run/spack/package.py (issue 16) against a small stand-in of Spack's package API, since
Spack itself is not installed here: the recipe's variants match the MINIPT_ENABLE_*
options of CMakeLists.txt, and cmake_args() of every valid variant combination sets each
option ON or OFF, as the variants say, once.

The stand-in records the directives (version, variant, conflicts, depends_on) and models
a concrete spec with just what cmake_args() uses: satisfies("+v"/"~v"), variants[...],
spec["dep"].prefix, and CMakeBuilder.define's formatting (bool -> :BOOL=ON|OFF, list ->
:STRING=a;b, else :STRING=value).
"""

import itertools
import os
import re
import sys
import types

import pytest

import minipt_runner as mr

RECIPE = os.path.join(mr.REPO_ROOT, "run", "spack", "package.py")
CMAKELISTS = os.path.join(mr.REPO_ROOT, "CMakeLists.txt")


# ---- the stand-in ----------------------------------------------------------------------
class InstallError(Exception):
    pass


_pending = []


def _directive(kind):
    def record(*args, **kwargs):
        _pending.append((kind, args, kwargs))
    return record


class Variant:
    def __init__(self, value):
        self.value = value


class Dependency:
    def __init__(self, name):
        self.prefix = "/opt/spack/%s" % name


class Spec:
    def __init__(self, variants, deps):
        self.variants = {k: Variant(v) for k, v in variants.items()}
        self.deps = deps

    def satisfies(self, constraint):
        """'+a', '~a', or several such ('+a~b'), as Spack reads a variant constraint."""
        terms = re.findall(r"([+~])(\w+)", constraint)
        assert terms and "".join(s + n for s, n in terms) == constraint, constraint
        for sign, name in terms:
            if name not in self.variants:
                return False  # a conditional variant that is not there satisfies neither
            if self.variants[name].value is not (sign == "+"):
                return False
        return True

    def __getitem__(self, name):
        assert name in self.deps, "%s is not a dependency of this spec" % name
        return Dependency(name)


class CMakePackage:
    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        cls.directives = list(_pending)
        _pending.clear()

    def __init__(self, spec, run_tests=False):
        self.spec = spec
        self.run_tests = run_tests

    @staticmethod
    def define(name, value):
        if isinstance(value, bool):
            return "-D%s:BOOL=%s" % (name, "ON" if value else "OFF")
        if isinstance(value, (list, tuple)):
            return "-D%s:STRING=%s" % (name, ";".join(str(v) for v in value))
        return "-D%s:STRING=%s" % (name, value)


def load_recipe():
    module = types.ModuleType("spack.package")
    module.CMakePackage = CMakePackage
    module.InstallError = InstallError
    module.env = os.environ
    for kind in ("version", "variant", "conflicts", "depends_on"):
        setattr(module, kind, _directive(kind))
    module.__all__ = ["CMakePackage", "InstallError", "env", "version", "variant",
                      "conflicts", "depends_on"]
    saved = {k: sys.modules.get(k) for k in ("spack", "spack.package")}
    sys.modules["spack"] = types.ModuleType("spack")
    sys.modules["spack.package"] = module
    try:
        namespace = {"__name__": "minipt_recipe"}
        exec(compile(open(RECIPE).read(), RECIPE, "exec"), namespace)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return namespace["Minipt"]


@pytest.fixture(scope="module")
def recipe():
    return load_recipe()


def directives(cls, kind):
    return [(args, kw) for k, args, kw in cls.directives if k == kind]


def variants(cls):
    return {args[0]: kw for args, kw in directives(cls, "variant")}


def concrete_specs(cls):
    """Every valid combination of the boolean variants: a conditional variant exists only
    where its `when` holds, and declared conflicts rule combinations out. Returns
    [(variant values, dependency names)] and the combinations ruled out."""
    decl = variants(cls)
    booleans = [n for n, kw in decl.items() if isinstance(kw["default"], bool)]
    valid, ruled_out = [], []
    for values in itertools.product([False, True], repeat=len(booleans)):
        chosen = dict(zip(booleans, values))
        probe = Spec(chosen, set())
        present = {n: v for n, v in chosen.items()
                   if "when" not in decl[n] or probe.satisfies(decl[n]["when"])}
        if present != chosen and any(v for n, v in chosen.items() if n not in present):
            continue  # an absent variant set to True: not a distinct spec
        for n, kw in decl.items():  # non-boolean variants present: their default
            if n not in present and not isinstance(kw["default"], bool):
                if "when" not in kw or Spec(present, set()).satisfies(kw["when"]):
                    present[n] = tuple(kw["default"].split(","))
        spec = Spec(present, set())
        if any(spec.satisfies(args[0]) and spec.satisfies(kw.get("when", args[0]))
               for args, kw in directives(cls, "conflicts")):
            ruled_out.append(present)
            continue
        deps = {args[0].split("@")[0] for args, kw in directives(cls, "depends_on")
                if "when" not in kw or spec.satisfies(kw["when"])}
        if (present, deps) not in valid:
            valid.append((present, deps))
    return valid, ruled_out


def cmake_enable_options():
    """The MINIPT_ENABLE_* cache options of CMakeLists.txt (the foreach over the parts,
    and any spelled out)."""
    text = open(CMAKELISTS).read()
    options = set(re.findall(r"\b(MINIPT_ENABLE_[A-Z0-9_]+)\b", text))
    loop = next((m for m in re.finditer(r"foreach\(_part ([A-Z0-9_ ]+)\)(.*?)endforeach\(\)", text,
                                        re.S)
                 if re.search(r"set\(MINIPT_ENABLE_\$\{_part\}[^)]*CACHE STRING", m.group(2))),
                None)
    assert loop, "CMakeLists.txt: no foreach(_part ...) defining MINIPT_ENABLE_${_part}"
    options |= {"MINIPT_ENABLE_" + p for p in loop.group(1).split()}
    options.discard("MINIPT_ENABLE_")
    return options


# ---- the checks ------------------------------------------------------------------------
def test_cmake_parse_finds_the_known_options():
    assert {"MINIPT_ENABLE_KOKKOS", "MINIPT_ENABLE_CUDA",
            "MINIPT_ENABLE_CUDNN"} <= cmake_enable_options()


def test_every_cmake_option_has_a_variant(recipe):
    decl = variants(recipe)
    mapped = {option: name for name, option in recipe.cmake_options.items()}
    assert set(mapped) == cmake_enable_options()
    for option, name in mapped.items():
        assert name in decl and decl[name]["default"] is False, (option, name)
        assert name == option[len("MINIPT_ENABLE_"):].lower()


def test_every_boolean_variant_maps_to_an_option(recipe):
    for name, kw in variants(recipe).items():
        if isinstance(kw["default"], bool):
            assert name in recipe.cmake_options or (
                recipe.covered_by.get(name) in recipe.cmake_options), name
    assert {"kokkos", "cuda", "nccl"} <= set(variants(recipe))


def test_nccl_is_tied_to_cuda(recipe):
    decl = variants(recipe)
    assert decl["nccl"]["when"] == "+cuda" and decl["nccl"]["default"] is True
    assert decl["cudnn"]["when"] == "+cuda"
    valid, ruled_out = concrete_specs(recipe)
    assert {"cuda": True, "nccl": False, "cudnn": False, "kokkos": False,
            "cuda_arch": ("90",)} in ruled_out
    for values, deps in valid:
        assert values.get("nccl", False) == values["cuda"], values
        assert ("nccl" in deps) == values["cuda"] and ("cuda" in deps) == values["cuda"]


def test_dependencies(recipe):
    deps = {args[0]: kw for args, kw in directives(recipe, "depends_on")}
    for always in ("mpi", "hdf5", "tomlplusplus", "cli11", "nlohmann-json"):
        assert always in deps and "when" not in deps[always], always
    assert deps["kokkos"]["when"] == "+kokkos"
    assert deps["cuda"]["when"] == "+cuda"
    assert deps["nccl"]["when"] == "+nccl"
    assert deps["cudnn@9:"]["when"] == "+cudnn"
    minimum = re.search(r"cmake_minimum_required\(VERSION ([0-9.]+)\)", open(CMAKELISTS).read())
    assert "cmake@%s:" % minimum.group(1) in deps


def test_version_is_the_projects(recipe):
    project = re.search(r"project\(minipt VERSION ([0-9.]+)", open(CMAKELISTS).read())
    assert [args[0] for args, kw in directives(recipe, "version")] == [project.group(1)]


def test_cmake_args_per_variant_combination(recipe, monkeypatch):
    monkeypatch.setenv("CUDNN_FRONTEND_INCLUDE", "/opt/frontend/include")
    valid, _ = concrete_specs(recipe)
    assert len(valid) == 6  # kokkos x (no cuda | cuda+nccl | cuda+nccl+cudnn)
    options = cmake_enable_options()
    for values, deps in valid:
        args = recipe(Spec(values, deps)).cmake_args()
        for option in options:
            name = {o: n for n, o in recipe.cmake_options.items()}[option]
            want = "ON" if values.get(name, False) else "OFF"
            found = [a for a in args if re.match(r"-D%s(:\w+)?=" % option, a)]
            assert found == ["-D%s:STRING=%s" % (option, want)], (values, args)
        assert not [a for a in args if a.endswith("=AUTO")], args
        assert ("-DNCCL_ROOT:STRING=/opt/spack/nccl" in args) == values["cuda"], args
        if values["cuda"]:
            assert "-DCMAKE_CUDA_ARCHITECTURES:STRING=90" in args, args
        if values.get("cudnn"):
            assert "-DMINIPT_CUDNN_ROOT:STRING=/opt/spack/cudnn" in args
            assert "-DCUDNN_FRONTEND_INCLUDE:STRING=/opt/frontend/include" in args
        assert "-DMINIPT_BUILD_TESTS:BOOL=OFF" in args


def test_cudnn_without_frontend_headers_is_an_install_error(recipe, monkeypatch):
    monkeypatch.delenv("CUDNN_FRONTEND_INCLUDE", raising=False)
    spec = Spec({"kokkos": False, "cuda": True, "nccl": True, "cudnn": True,
                 "cuda_arch": ("90",)}, {"cuda", "nccl", "cudnn"})
    with pytest.raises(InstallError, match="CUDNN_FRONTEND_INCLUDE"):
        recipe(spec).cmake_args()


def test_recipe_options_configure(recipe, tmp_path):
    """The ON/OFF values the recipe emits for a CPU spec are accepted by CMake itself."""
    import shutil
    import subprocess
    if shutil.which("cmake") is None:
        pytest.skip("cmake not installed")
    args = recipe(Spec({"kokkos": False, "cuda": False}, set())).cmake_args()
    proc = subprocess.run(["cmake", "-S", mr.REPO_ROOT, "-B", str(tmp_path / "b"), *args],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "kokkos=OFF, cuda=OFF, cudnn=OFF" in proc.stdout, proc.stdout
