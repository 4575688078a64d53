# ctest -L packaging: installs the build tree BUILD into a fresh prefix under
# WORK, then configures, builds and runs tests/packaging/consumer against it.
# Arguments: -DBUILD= -DWORK= -DSOURCE= (the consumer) -DWITH_SIMULATOR=ON|OFF -DGENERATOR=
file(REMOVE_RECURSE ${WORK})
set(prefix ${WORK}/prefix)

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "${what} failed (${status}):\n${out}")
  endif()
  set(output "${out}" PARENT_SCOPE)
endfunction()

run("cmake --install" ${CMAKE_COMMAND} --install ${BUILD} --prefix ${prefix})
foreach(installed lib/cmake/plait/plaitConfig.cmake lib/cmake/plait/plaitConfigVersion.cmake
                  include/plait/schedule/program.hpp bin/plait)
  if(NOT EXISTS ${prefix}/${installed})
    message(FATAL_ERROR "not installed: ${installed}")
  endif()
endforeach()
run("consumer configure" ${CMAKE_COMMAND} -S ${SOURCE} -B ${WORK}/consumer -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${prefix} -DWITH_SIMULATOR=${WITH_SIMULATOR} -DCMAKE_BUILD_TYPE=Release)
run("consumer build" ${CMAKE_COMMAND} --build ${WORK}/consumer)
run("consumer run" ${WORK}/consumer/plait_consumer)
message(STATUS "${output}")
if(NOT output MATCHES "plait consumer: 2 ranks, [1-9][0-9]* ops")
  message(FATAL_ERROR "unexpected consumer output:\n${output}")
endif()
