# plait calibrate --from-steps end to end on 48 real rows of the vTrain A100
# data: the kernel model is fitted, the k-fold report and the per-row
# predictions written, and the fitted profile prices a tensor-parallel GPT
# step in plait simulate; schedule --from-step builds a row's own step; bad
# arguments are one-line errors.
# Run by ctest: cmake -DPLAIT=<plait binary> -DDATA=<csv dir> -DWORK=<dir> -P this file.
include(${CMAKE_CURRENT_LIST_DIR}/../support/run_command.cmake)
file(MAKE_DIRECTORY ${WORK})

run(0 ${PLAIT} calibrate --from-steps ${DATA}/vtrain_steps_sample.csv --platform a100-node --folds 4
    -o ${WORK}/a100-fitted.json --report ${WORK}/report.md --predictions ${WORK}/predictions.csv)
foreach(expected "Kernel model fitted on 48 measured steps" "\\| efficiency \\(of peak\\) \\| [0-9.]+ \\|"
                 "## Shape factors" "\\| 1 \\| 4 \\| 1024 \\| 16 \\| 1024 \\| [0-9.]+ \\| [0-9.]+ \\| 6 \\|"
                 "## 4-fold held-out error" "\\| all \\| 48 \\| [0-9.]+ % \\|" "\\| TP 8 \\| 1 \\|"
                 "## Shapes not seen: 4-fold by shape" "## Worst held-out rows")
  if(NOT out MATCHES "${expected}")
    message(FATAL_ERROR "expected \"${expected}\" in:\n${out}")
  endif()
endforeach()
file(READ ${WORK}/report.md report)
string(FIND "${out}" "${report}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "the report file differs from what was printed")
endif()
# The profile carries the shape factors the report lists (shapes of at least 3 rows).
file(READ ${WORK}/a100-fitted.json profile)
string(JSON factors LENGTH "${profile}" shape_factors)
string(JSON tp GET "${profile}" shape_factors 0 shape tensor_parallel)
if(factors LESS 3 OR NOT tp EQUAL 1)
  message(FATAL_ERROR "expected shape factors in the profile, TP 1 first: ${factors}, ${tp}")
endif()
file(STRINGS ${WORK}/predictions.csv rows)
list(LENGTH rows count)
if(NOT count EQUAL 49)
  message(FATAL_ERROR "expected a header and 48 rows in predictions.csv, got ${count} lines")
endif()
# Held-out predictions of real rows, by row: within 50 % each (the report gives the figures).
foreach(row IN LISTS rows)
  if(row MATCHES "^line")
    continue()
  endif()
  string(REPLACE "," ";" fields "${row}")
  list(GET fields 13 error)
  if(error GREATER 0.5 OR error LESS -0.5)
    message(FATAL_ERROR "held-out error ${error} in row ${row}")
  endif()
endforeach()

run(0 ${PLAIT} schedule --kind 1f1b --model gpt --vocab 50432 --tp 2 -P 2 --dp 2 -M 4 -N 24 --d-model 1024 --heads 16
    --seq 1024 --batch 32 --dtype fp16 --recompute -o ${WORK}/gpt.json)
run(0 ${PLAIT} simulate ${WORK}/gpt.json --platform a100-node --profile ${WORK}/a100-fitted.json --json)
string(JSON predicted GET "${out}" predicted_time_s)
string(JSON ranks LENGTH "${out}" ranks)
if(NOT ranks EQUAL 8 OR predicted LESS 0.1 OR predicted GREATER 0.5)
  message(FATAL_ERROR "a TP 2 x PP 2 x DP 2 step of a 24-layer GPT (measured 220 ms): ${predicted} s on ${ranks} ranks")
endif()

run(1 ${PLAIT} calibrate --from-steps ${DATA}/vtrain_steps_sample.csv -o ${WORK}/never.json)
if(NOT err MATCHES "^plait: --from-steps: needs --platform \\(the devices and links that ran the steps\\)\n$")
  message(FATAL_ERROR "unexpected error: ${err}")
endif()
run(1 ${PLAIT} schedule --kind 1f1b --vocab 64 -o ${WORK}/never.json)
if(NOT err MATCHES "^plait: --vocab: only --model gpt has a vocabulary\n$")
  message(FATAL_ERROR "unexpected error: ${err}")
endif()
run(1 ${PLAIT} schedule --kind 1f1b --model gpt --tp 3 -P 2 -M 2 -o ${WORK}/never.json)
if(NOT err MATCHES "^plait: tp: heads 4 is not divisible by 3 tensor-parallel ranks\n$")
  message(FATAL_ERROR "unexpected error: ${err}")
endif()
# A measured row's own step: line 2 is 2 GPUs, PP 2, global 16 in micro-batches of 8.
run(0 ${PLAIT} schedule --from-step ${DATA}/vtrain_steps_sample.csv:2 -o ${WORK}/line2.json)
file(READ ${WORK}/line2.json program)
string(JSON ranks GET "${program}" ranks)
string(JSON micro GET "${program}" micro_batches)
string(JSON vocab GET "${program}" model vocab)
if(NOT ranks EQUAL 2 OR NOT micro EQUAL 2 OR NOT vocab EQUAL 50304)
  message(FATAL_ERROR "line 2's step: ${ranks} ranks, ${micro} micro-batches, vocabulary ${vocab}")
endif()
run(1 ${PLAIT} schedule --from-step ${DATA}/vtrain_steps_sample.csv:1 -o ${WORK}/never.json)
if(NOT err MATCHES "^plait: --from-step: .*vtrain_steps_sample.csv has no measured step on line 1\n$")
  message(FATAL_ERROR "unexpected error: ${err}")
endif()
