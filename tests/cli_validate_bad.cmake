# Runs `routenlp validate` on a bad dataset and checks exit code 1 and that stderr names
# file:line: field. Usage: cmake -DRN_CLI=<routenlp> -DRN_DATA=<bad.jsonl> -DRN_EXPECT=<text>
#                                 [-DRN_EXTRA=<arg;arg>] -P cli_validate_bad.cmake
execute_process(COMMAND ${RN_CLI} validate --data ${RN_DATA} ${RN_EXTRA}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 1)
  message(FATAL_ERROR "expected exit code 1, got '${rc}'\nstdout:\n${out}\nstderr:\n${err}")
endif()
string(FIND "${err}" "${RN_EXPECT}" pos)
if(pos EQUAL -1)
  message(FATAL_ERROR "stderr does not contain '${RN_EXPECT}':\n${err}")
endif()
message(STATUS "ok: exit 1, stderr: ${err}")
