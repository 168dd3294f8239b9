# What the run summaries record about the build (src/trace/provenance.cpp): the compiler,
# build type and flags, and the versions of the libraries found at configure time, in
# ${MINIPT_GENERATED_INCLUDE}/minipt_build_info.hpp; and minipt's own source revision in
# minipt_revision.hpp, regenerated at every build (a commit needs no re-configure).
set(MINIPT_GENERATED_INCLUDE ${CMAKE_BINARY_DIR}/generated)
file(MAKE_DIRECTORY ${MINIPT_GENERATED_INCLUDE})

string(TOUPPER "${CMAKE_BUILD_TYPE}" _bt)
set(MINIPT_BUILD_CXX_FLAGS "${CMAKE_CXX_FLAGS} ${CMAKE_CXX_FLAGS_${_bt}}")
string(STRIP "${MINIPT_BUILD_CXX_FLAGS}" MINIPT_BUILD_CXX_FLAGS)
string(JOIN " " MINIPT_BUILD_WARNINGS ${MINIPT_WARNINGS})
if(MINIPT_SANITIZE)
  string(APPEND MINIPT_BUILD_CXX_FLAGS " -fsanitize=address,undefined")
endif()
set(MINIPT_BUILD_COMPILER "${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION} (${CMAKE_CXX_COMPILER})")
set(MINIPT_BUILD_CUDA_COMPILER "")
if(MINIPT_HAVE_CUDA)
  set(MINIPT_BUILD_CUDA_COMPILER "${CMAKE_CUDA_COMPILER_ID} ${CMAKE_CUDA_COMPILER_VERSION} (${CMAKE_CUDA_COMPILER}), architectures ${CMAKE_CUDA_ARCHITECTURES}")
endif()
set(MINIPT_BUILD_KOKKOS_VERSION "")
if(MINIPT_HAVE_KOKKOS)
  set(MINIPT_BUILD_KOKKOS_VERSION "${Kokkos_VERSION}")
endif()
set(MINIPT_BUILD_CUDA_TOOLKIT_VERSION "")
if(MINIPT_HAVE_CUDA)
  set(MINIPT_BUILD_CUDA_TOOLKIT_VERSION "${CUDAToolkit_VERSION}")
endif()
set(MINIPT_BUILD_OPTIONS "kokkos=${MINIPT_HAVE_KOKKOS} cuda=${MINIPT_HAVE_CUDA} cudnn=${MINIPT_HAVE_CUDNN} sanitize=${MINIPT_SANITIZE} werror=${MINIPT_WERROR}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/build_info.hpp.in
               ${MINIPT_GENERATED_INCLUDE}/minipt_build_info.hpp @ONLY)

# The revision of minipt's own tree, rewritten (only when it changed) at every build.
add_custom_target(minipt_revision ALL
  COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${CMAKE_SOURCE_DIR}
          -DOUTPUT=${MINIPT_GENERATED_INCLUDE}/minipt_revision.hpp
          -DGIT_EXECUTABLE=${GIT_EXECUTABLE} -P ${CMAKE_CURRENT_LIST_DIR}/revision.cmake
  BYPRODUCTS ${MINIPT_GENERATED_INCLUDE}/minipt_revision.hpp
  COMMENT "minipt source revision" VERBATIM)
