# Runs `routenlp import` and checks exit code 0, that the summary names the rows, and that the
# output equals the committed file. Usage:
#   cmake -DRN_CLI=<routenlp> -DRN_ARGS=<arg;arg> -DRN_OUT=<file> -DRN_EXPECT_FILE=<file>
#         -DRN_EXPECT=<text> -P cli_import.cmake
file(REMOVE ${RN_OUT})
execute_process(COMMAND ${RN_CLI} import ${RN_ARGS} --out ${RN_OUT}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "import exited with '${rc}'\nstdout:\n${out}\nstderr:\n${err}")
endif()
string(FIND "${out}" "${RN_EXPECT}" pos)
if(pos EQUAL -1)
  message(FATAL_ERROR "summary does not contain '${RN_EXPECT}':\n${out}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${RN_OUT} ${RN_EXPECT_FILE}
  RESULT_VARIABLE same)
if(NOT same EQUAL 0)
  message(FATAL_ERROR "${RN_OUT} differs from ${RN_EXPECT_FILE}")
endif()
message(STATUS "ok:\n${out}")
