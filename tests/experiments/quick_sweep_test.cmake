# experiments/quick.json end to end: plait sweep calibrates, predicts and
# measures every point; results.csv has a measured row with its spread for
# each, report.md states the error and the noise floor, the plots exist.
# Run by ctest: cmake -DPLAIT=<plait> -DTOOLS=<dir of plait-exec> -DSPEC=<quick.json> -DWORK=<dir> -P this file.
file(REMOVE_RECURSE ${WORK})
set(ENV{CI} true)
execute_process(COMMAND ${PLAIT} sweep ${SPEC} -o ${WORK} -j 2 --tools ${TOOLS}
                RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT code EQUAL 0)
  message(FATAL_ERROR "plait sweep exit ${code}\nstdout: ${out}\nstderr: ${err}")
endif()
if(NOT err STREQUAL "")
  message(FATAL_ERROR "plait sweep printed on stderr in CI: ${err}")
endif()
if(NOT out MATCHES "report: ${WORK}/report.md")
  message(FATAL_ERROR "no report line in: ${out}")
endif()
message(STATUS "${out}")
file(STRINGS ${WORK}/results.csv rows)
list(LENGTH rows count)
if(count LESS 5)
  message(FATAL_ERROR "results.csv has ${count} lines")
endif()
list(POP_FRONT rows header)
foreach(row IN LISTS rows)
  # predicted, measured, min, max, both speedups, relative_error, the prediction
  # at the calibration's speed and the speed factor present, status ok.
  if(NOT row MATCHES ",[0-9.e+-]+,[0-9.e+-]+,[0-9.e+-]+,[0-9.e+-]+,[0-9.e+-]+,[0-9.e+-]+,[0-9.e+-]+,[0-9.e+-]+,[0-9.e+-]+,ok,$")
    message(FATAL_ERROR "row not measured: ${row}")
  endif()
endforeach()
file(READ ${WORK}/report.md report)
if(NOT report MATCHES "noise floor" OR NOT report MATCHES "abs\\(error\\) over [0-9]+ measured points"
   OR NOT report MATCHES "at the calibration's speed")
  message(FATAL_ERROR "report.md lacks the error summary:\n${report}")
endif()
foreach(png predicted_vs_measured speedup_vs_layers)
  if(NOT EXISTS ${WORK}/plots/${png}.png)
    message(FATAL_ERROR "missing plot ${png}.png")
  endif()
endforeach()
if(NOT EXISTS ${WORK}/profile.json)
  message(FATAL_ERROR "quick.json calibrates: no profile.json")
endif()
# The calibration's runs on 1 and 2 ranks left the shape's speed reference.
file(READ ${WORK}/profile.json profile)
if(NOT profile MATCHES "\"speed_references\": \\[\n +{\n +\"alone_s\": [0-9]")
  message(FATAL_ERROR "profile.json has no speed reference")
endif()
