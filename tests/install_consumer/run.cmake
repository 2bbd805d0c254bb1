# Install the built library into a scratch prefix, then configure, build and run a consumer
# project that finds it with find_package(routenlp).
file(REMOVE_RECURSE ${RN_WORK_DIR})
set(prefix ${RN_WORK_DIR}/prefix)
execute_process(COMMAND ${CMAKE_COMMAND} --install ${RN_BUILD_DIR} --prefix ${prefix}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "install failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${RN_SOURCE_DIR} -B ${RN_WORK_DIR}/build
  -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "consumer configure failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${RN_WORK_DIR}/build RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "consumer build failed (${rc})")
endif()
execute_process(COMMAND ${RN_WORK_DIR}/build/consumer RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "consumer run failed (${rc})")
endif()
# The installed CLI runs from its prefix with no LD_LIBRARY_PATH: it finds the installed library
# through its $ORIGIN-relative RPATH (and not the build tree's, which install strips).
if(EXISTS ${prefix}/bin/routenlp)
  execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=LD_LIBRARY_PATH ${prefix}/bin/routenlp --version
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "installed routenlp CLI does not run (${rc}): ${err}")
  endif()
  message(STATUS "installed CLI: ${out}")
endif()
