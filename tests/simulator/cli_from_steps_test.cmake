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

# Steps across nodes beside the single-node ones: the kernel model from these,
# the inter-node links from those (the cluster's 41 public rows), the fitted
# platform written and usable; errors name what is missing.
set(cluster_csv ${SHARED}/vtrain-a100/cluster_steps_64_256_gpus.csv)
run(0 ${PLAIT} calibrate --from-steps ${DATA}/vtrain_steps_sample.csv --from-steps ${cluster_csv}
    --platform a100-cluster --folds 4 -o ${WORK}/cluster-profile.json --platform-out ${WORK}/cluster-fitted.json)
foreach(expected "## Inter-node links fitted on 41 steps across nodes"
                 "\\| a node's NIC bandwidth \\| 100.0 GB/s \\(800 Gb/s\\) \\| [0-9.]+ GB/s"
                 "## Error: fitted on every row, and leave one model out" "\\| GPUs 256 \\| 15 \\|"
                 "\\| 41 \\| 256 \\| 16 \\| 1 \\| 16 \\| 2 \\| hidden 6144, 48 heads, 40 layers \\| 20414.8 \\|"
                 "platform: ${WORK}/cluster-fitted.json")
  if(NOT out MATCHES "${expected}")
    message(FATAL_ERROR "expected \"${expected}\" in:\n${out}")
  endif()
endforeach()
file(READ ${WORK}/cluster-fitted.json fitted)
string(JSON collectives GET "${fitted}" inter_node collectives)
string(JSON bandwidth GET "${fitted}" inter_node link bandwidth_bytes_per_s)
if(NOT collectives STREQUAL "hierarchical" OR bandwidth LESS 1e10 OR bandwidth GREATER 1e12)
  message(FATAL_ERROR "the fitted platform: ${collectives}, ${bandwidth} B/s")
endif()
run(0 ${PLAIT} schedule --from-step ${cluster_csv}:41 -o ${WORK}/tp16.json)
run(0 ${PLAIT} simulate ${WORK}/tp16.json --platform ${WORK}/cluster-fitted.json --nodes 32
    --profile ${WORK}/cluster-profile.json
    --json)
string(JSON predicted GET "${out}" predicted_time_s)
if(predicted LESS 10 OR predicted GREATER 40)  # measured 20.4 s
  message(FATAL_ERROR "TP 16 x DP 16 of the 18.4B model on 256 A100s: ${predicted} s")
endif()
run(1 ${PLAIT} calibrate --from-steps ${cluster_csv} --platform a100-cluster -o ${WORK}/never.json)
if(NOT err MATCHES "^plait: --from-steps .*cluster_steps_64_256_gpus.csv: no steps on one node: the kernel model is fitted on those before the links between nodes\n$")
  message(FATAL_ERROR "unexpected error: ${err}")
endif()
run(1 ${PLAIT} calibrate --from-steps ${DATA}/vtrain_steps_sample.csv --from-steps ${cluster_csv} --platform a100-node
    -o ${WORK}/never.json)
if(NOT err MATCHES "^plait: .*cluster_steps_64_256_gpus.csv: line 2: 64 GPUs: the platform a100-node has 8 devices on one node \\(steps across nodes need a star of nodes\\)\n$")
  message(FATAL_ERROR "unexpected error: ${err}")
endif()
run(1 ${PLAIT} calibrate --from-steps ${DATA}/vtrain_steps_sample.csv --platform a100-node --platform-out ${WORK}/p.json
    -o ${WORK}/never.json)
if(NOT err MATCHES "^plait: --platform-out: no steps across nodes to fit the inter-node links on\n$")
  message(FATAL_ERROR "unexpected error: ${err}")
endif()
# Rows of one model across nodes: fitted, with no leave-one-model-out check to give.
file(STRINGS ${DATA}/vtrain_cluster_sample.csv sample_lines)
list(SUBLIST sample_lines 0 7 one_model)
list(JOIN one_model "\n" one_model_text)
file(WRITE ${WORK}/one-model.csv "${one_model_text}\n")
run(0 ${PLAIT} calibrate --from-steps ${DATA}/vtrain_steps_sample.csv --from-steps ${WORK}/one-model.csv
    --platform a100-cluster --folds 4 -o ${WORK}/one-model-profile.json)
if(NOT out MATCHES "Inter-node links fitted on 6 steps across nodes" OR
   NOT out MATCHES "One model among these rows: no leave-one-model-out check \\(it needs two\\)")
  message(FATAL_ERROR "one model across nodes:\n${out}")
endif()
