# run(expected_code COMMAND...): runs a command, fails the test unless it exits
# with expected_code, and leaves its stdout in `out` and stderr in `err`.
function(run expected_code)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT code EQUAL expected_code)
    message(FATAL_ERROR "${ARGN}\nexit ${code} (expected ${expected_code})\nstdout: ${out}\nstderr: ${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
  set(err "${err}" PARENT_SCOPE)
endfunction()
