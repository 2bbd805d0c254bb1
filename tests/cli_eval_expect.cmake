# Runs `routenlp <args>` and checks the exit code and that stderr contains a text.
# Usage: cmake -DRN_CLI=<routenlp> "-DRN_ARGS=<arg;arg>" -DRN_RC=<code> -DRN_EXPECT=<text>
#              -P cli_eval_expect.cmake
execute_process(COMMAND ${RN_CLI} ${RN_ARGS}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL ${RN_RC})
  message(FATAL_ERROR "expected exit code ${RN_RC}, got '${rc}'\nstdout:\n${out}\nstderr:\n${err}")
endif()
string(FIND "${err}" "${RN_EXPECT}" pos)
if(pos EQUAL -1)
  message(FATAL_ERROR "stderr does not contain '${RN_EXPECT}':\n${err}")
endif()
message(STATUS "ok: exit ${rc}, stderr: ${err}")
