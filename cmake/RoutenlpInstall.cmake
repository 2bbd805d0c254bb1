# Install rules and the exported CMake package: find_package(routenlp) -> routenlp::routenlp.
include(CMakePackageConfigHelpers)

install(TARGETS routenlp EXPORT routenlpTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/routenlp ${PROJECT_SOURCE_DIR}/capi/include/routenlp
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(TARGET routenlp_cli)
  # The installed CLI finds the installed library wherever the prefix is moved: $ORIGIN-relative.
  file(RELATIVE_PATH _rn_bin_to_lib ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
  set_target_properties(routenlp_cli PROPERTIES INSTALL_RPATH "$ORIGIN/${_rn_bin_to_lib}")
  install(TARGETS routenlp_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

set(_rn_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/routenlp)
install(EXPORT routenlpTargets NAMESPACE routenlp:: DESTINATION ${_rn_cmake_dir})
export(EXPORT routenlpTargets NAMESPACE routenlp::
  FILE ${PROJECT_BINARY_DIR}/routenlpTargets.cmake)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/routenlpConfig.cmake.in
  ${PROJECT_BINARY_DIR}/routenlpConfig.cmake INSTALL_DESTINATION ${_rn_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/routenlpConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/routenlpConfig.cmake
  ${PROJECT_BINARY_DIR}/routenlpConfigVersion.cmake DESTINATION ${_rn_cmake_dir})
