# FindCUDNN: cuDNN 9 and the header-only cuDNN frontend (what compute.attention = cudnn
# needs).
#
# cuDNN is looked for in CUDNN_ROOT (a prefix with include/ and lib/; a pip wheel's
# site-packages/nvidia/cudnn works), the CUDA toolkit and the system; the frontend in
# CUDNN_FRONTEND_INCLUDE (default: .deps/cudnn-frontend/include, where run/deps.sh puts
# it). Defines:
#   CUDNN_FOUND, CUDNN_INCLUDE_DIR, CUDNN_LIBRARY, CUDNN_FRONTEND_INCLUDE, CUDNN_VERSION
#   CUDNN::cudnn  imported target (cuDNN and, as SYSTEM includes, the frontend's headers)
set(CUDNN_FRONTEND_INCLUDE "${CMAKE_SOURCE_DIR}/.deps/cudnn-frontend/include"
    CACHE PATH "cuDNN frontend headers (cudnn_frontend.h)")
find_path(CUDNN_INCLUDE_DIR cudnn.h
          HINTS ${CUDNN_ROOT} ENV CUDNN_ROOT ${CUDAToolkit_INCLUDE_DIRS}
          PATH_SUFFIXES include)
find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9
             HINTS ${CUDNN_ROOT} ENV CUDNN_ROOT ${CUDAToolkit_LIBRARY_DIR}
             PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu)
set(_cudnn_header "")
foreach(_h cudnn_version.h cudnn.h)
  if(NOT _cudnn_header AND CUDNN_INCLUDE_DIR AND EXISTS "${CUDNN_INCLUDE_DIR}/${_h}")
    set(_cudnn_header "${CUDNN_INCLUDE_DIR}/${_h}")
  endif()
endforeach()
if(_cudnn_header)
  file(STRINGS "${_cudnn_header}" _cudnn_lines REGEX "^#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) ")
  foreach(_part MAJOR MINOR PATCHLEVEL)
    string(REGEX MATCH "CUDNN_${_part} ([0-9]+)" _ "${_cudnn_lines}")
    set(_cudnn_${_part} "${CMAKE_MATCH_1}")
  endforeach()
  set(CUDNN_VERSION "${_cudnn_MAJOR}.${_cudnn_MINOR}.${_cudnn_PATCHLEVEL}")
endif()
set(_cudnn_frontend_header "")
if(EXISTS "${CUDNN_FRONTEND_INCLUDE}/cudnn_frontend.h")
  set(_cudnn_frontend_header "${CUDNN_FRONTEND_INCLUDE}/cudnn_frontend.h")
endif()
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CUDNN REQUIRED_VARS CUDNN_LIBRARY CUDNN_INCLUDE_DIR
                                  _cudnn_frontend_header VERSION_VAR CUDNN_VERSION)
if(CUDNN_FOUND AND NOT TARGET CUDNN::cudnn)
  add_library(CUDNN::cudnn UNKNOWN IMPORTED)
  set_target_properties(CUDNN::cudnn PROPERTIES
    IMPORTED_LOCATION "${CUDNN_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${CUDNN_INCLUDE_DIR};${CUDNN_FRONTEND_INCLUDE}"
    INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${CUDNN_INCLUDE_DIR};${CUDNN_FRONTEND_INCLUDE}")
endif()
mark_as_advanced(CUDNN_INCLUDE_DIR CUDNN_LIBRARY)
