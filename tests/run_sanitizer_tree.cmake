# ctest -L sanitize: brings the sanitizer tree (scripts/bootstrap.sh builds it
# in build-asan: ASan + UBSan, no torch) up to date, then runs its unit and fuzz
# tests; any sanitizer report fails them. Arguments: -DTREE= -DCTEST=
execute_process(COMMAND ${CMAKE_COMMAND} --build ${TREE} -j2 RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "building the sanitizer tree ${TREE} failed")
endif()
execute_process(COMMAND ${CTEST} --test-dir ${TREE} --output-on-failure -LE "mpi|packaging|benchmark"
                RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "tests of the sanitizer tree ${TREE} failed (reports above)")
endif()
