# Installation and the exported CMake package, so that a C++ project's
#   find_package(plait REQUIRED)
#   target_link_libraries(app PRIVATE plait::schedule plait::simulator)
# works against `cmake --install build --prefix PREFIX`. Components call
# plait_export_library; the top level calls plait_install_package once, last.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(PLAIT_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/plait)

# Installs `target` (exported as plait::<export_name>) and the headers under
# `headers_dir` (which hold plait/<component>/...).
function(plait_export_library target export_name headers_dir)
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${export_name})
  target_include_directories(${target} INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  install(TARGETS ${target} EXPORT plaitTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(DIRECTORY ${headers_dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  set_property(GLOBAL APPEND PROPERTY PLAIT_EXPORTED_COMPONENTS ${export_name})
endfunction()

# The binaries, the shipped platforms, plaitTargets.cmake, plaitConfig.cmake
# (which finds what the exported libraries link: nlohmann_json, Threads, ZLIB, and
# SimGrid, Torch, MPI when those parts are built) and its version file.
function(plait_install_package)
  foreach(binary plait plait-exec plait-bench)
    if(TARGET ${binary})
      install(TARGETS ${binary} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
    endif()
  endforeach()
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/platforms/ DESTINATION ${CMAKE_INSTALL_DATADIR}/plait/platforms)

  get_property(PLAIT_EXPORTED_COMPONENTS GLOBAL PROPERTY PLAIT_EXPORTED_COMPONENTS)
  set(PLAIT_EXPORTS_SIMGRID OFF)
  set(PLAIT_EXPORTS_TORCH OFF)
  set(PLAIT_EXPORTS_MPI OFF)
  if(simulator IN_LIST PLAIT_EXPORTED_COMPONENTS)
    set(PLAIT_EXPORTS_SIMGRID ON)
    install(FILES ${PROJECT_SOURCE_DIR}/cmake/FindSimGrid.cmake DESTINATION ${PLAIT_INSTALL_CMAKEDIR})
  endif()
  if(executor IN_LIST PLAIT_EXPORTED_COMPONENTS)
    set(PLAIT_EXPORTS_TORCH ON)
  endif()
  if(executor_mpi IN_LIST PLAIT_EXPORTED_COMPONENTS OR costmodels_mpi IN_LIST PLAIT_EXPORTED_COMPONENTS)
    set(PLAIT_EXPORTS_MPI ON)
  endif()

  install(EXPORT plaitTargets NAMESPACE plait:: DESTINATION ${PLAIT_INSTALL_CMAKEDIR})
  configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/plaitConfig.cmake.in
                                ${PROJECT_BINARY_DIR}/plaitConfig.cmake
                                INSTALL_DESTINATION ${PLAIT_INSTALL_CMAKEDIR})
  write_basic_package_version_file(${PROJECT_BINARY_DIR}/plaitConfigVersion.cmake
                                   COMPATIBILITY SameMinorVersion)
  install(FILES ${PROJECT_BINARY_DIR}/plaitConfig.cmake ${PROJECT_BINARY_DIR}/plaitConfigVersion.cmake
          DESTINATION ${PLAIT_INSTALL_CMAKEDIR})
endfunction()
