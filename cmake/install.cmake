# cmake --install BUILD --prefix P:
#   P/bin/minipt
#   P/share/minipt/inputs   the configuration files (inputs/)
#   P/share/minipt/slurm    minipt.sbatch (its defaults point at P) and its README
#   P/share/minipt/suite    the suite runner (run/suite/)
#   P/share/minipt/lib      run/lib/result (reads a run's JSON summary; minipt.sbatch uses it)
#   P/lib/cmake/minipt      minipt-config.cmake: imported target minipt::minipt (the
#                           executable), find_package(minipt) from other projects
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS minipt EXPORT minipt-targets RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/inputs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/minipt/inputs)
install(FILES ${CMAKE_SOURCE_DIR}/run/slurm/README.md DESTINATION ${CMAKE_INSTALL_DATADIR}/minipt/slurm)
install(PROGRAMS ${CMAKE_SOURCE_DIR}/run/slurm/minipt.sbatch
        DESTINATION ${CMAKE_INSTALL_DATADIR}/minipt/slurm)
# The installed script's defaults are the prefix's binary and inputs: its MINIPT_PREFIX
# line gets the prefix given at install time (cmake --install --prefix).
install(CODE [[
  set(_sbatch "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}/share/minipt/slurm/minipt.sbatch")
  file(READ "${_sbatch}" _text)
  string(REPLACE "MINIPT_PREFIX=\"\${MINIPT_PREFIX:-}\"" "MINIPT_PREFIX=\"\${MINIPT_PREFIX:-${CMAKE_INSTALL_PREFIX}}\"" _new "${_text}")
  if(_new STREQUAL _text)
    message(FATAL_ERROR "minipt.sbatch has no MINIPT_PREFIX line to set")
  endif()
  file(WRITE "${_sbatch}" "${_new}")
]])
install(PROGRAMS ${CMAKE_SOURCE_DIR}/run/lib/result DESTINATION ${CMAKE_INSTALL_DATADIR}/minipt/lib)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/run/suite/ DESTINATION ${CMAKE_INSTALL_DATADIR}/minipt/suite
        USE_SOURCE_PERMISSIONS PATTERN "__pycache__" EXCLUDE)

install(EXPORT minipt-targets NAMESPACE minipt:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/minipt)
file(WRITE ${CMAKE_BINARY_DIR}/minipt-config.cmake.in [[
@PACKAGE_INIT@
include("${CMAKE_CURRENT_LIST_DIR}/minipt-targets.cmake")
set_and_check(minipt_DATA_DIR "@PACKAGE_CMAKE_INSTALL_DATADIR@/minipt")
check_required_components(minipt)
]])
configure_package_config_file(${CMAKE_BINARY_DIR}/minipt-config.cmake.in
                              ${CMAKE_BINARY_DIR}/minipt-config.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/minipt
                              PATH_VARS CMAKE_INSTALL_DATADIR)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/minipt-config-version.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/minipt-config.cmake ${CMAKE_BINARY_DIR}/minipt-config-version.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/minipt)
