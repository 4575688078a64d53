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
# The installed plait finds shipped platforms in its own share/plait/platforms.
if(WITH_SIMULATOR)
  file(COPY_FILE ${prefix}/share/plait/platforms/h100x32.json ${prefix}/share/plait/platforms/installed-only.json)
  run("installed plait schedule" ${prefix}/bin/plait schedule -N 8 -P 2 --d-model 64 --seq 16 --batch 2 -o ${WORK}/p.json)
  run("installed plait simulate" ${CMAKE_COMMAND} -E env --unset=PLAIT_PLATFORMS
      ${prefix}/bin/plait simulate ${WORK}/p.json --platform installed-only --json)
endif()
run("consumer configure" ${CMAKE_COMMAND} -S ${SOURCE} -B ${WORK}/consumer -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${prefix} -DWITH_SIMULATOR=${WITH_SIMULATOR} -DCMAKE_BUILD_TYPE=Release)
run("consumer build" ${CMAKE_COMMAND} --build ${WORK}/consumer)
run("consumer run" ${WORK}/consumer/plait_consumer)
message(STATUS "${output}")
if(NOT output MATCHES "plait consumer: 2 ranks, [1-9][0-9]* ops")
  message(FATAL_ERROR "unexpected consumer output:\n${output}")
endif()
