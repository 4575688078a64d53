# plait allreduce-check end to end: the ring model fitted on two device counts
# of synthetic nccl-tests output made with known figures (8 us, 300 GB/s link,
# 500 GB/s pass) recovers them, and the held-out count is predicted exactly;
# bad arguments are one-line errors.
# Run by ctest: cmake -DPLAIT=<plait binary> -DDATA=<csv dir> -P this file.
include(${CMAKE_CURRENT_LIST_DIR}/../support/run_command.cmake)

run(0 ${PLAIT} allreduce-check --platform a100-node --measured 2=${DATA}/ring_2gpu_allreduce.csv
    --measured 3=${DATA}/ring_3gpu_allreduce.csv --measured 4=${DATA}/ring_4gpu_allreduce.csv --fit 2,4)
foreach(expected "fit on 12 samples: step latency 8 us" "link 300 GB/s" "pass 500 GB/s"
                 "\n3        held out        6         0.00%        0.00%" "all: median \\|error\\| 0.00%, max 0.00% over 18")
  if(NOT out MATCHES "${expected}")
    message(FATAL_ERROR "expected \"${expected}\" in:\n${out}")
  endif()
endforeach()
# The shipped a100-node platform, as it is: the synthetic node is not an A100 node.
run(0 ${PLAIT} allreduce-check --platform a100-node --measured 2=${DATA}/ring_2gpu_allreduce.csv)
if(NOT out MATCHES "\n2        checked         6 ")
  message(FATAL_ERROR "expected a checked row for 2 devices in:\n${out}")
endif()
run(1 ${PLAIT} allreduce-check --platform a100-node --measured ${DATA}/ring_2gpu_allreduce.csv)
if(NOT err MATCHES "^plait: --measured: \"[^\"]*\" is not DEVICES=FILE \\(e.g. 8=a100_8gpu_allreduce.csv\\)\n$")
  message(FATAL_ERROR "unexpected error: ${err}")
endif()
run(1 ${PLAIT} allreduce-check --platform a100-node --measured 16=${DATA}/ring_2gpu_allreduce.csv)
if(NOT err MATCHES "^plait: all-reduce: 16 devices: the platform a100-node has 8 \\(2 or more needed\\)\n$")
  message(FATAL_ERROR "unexpected error: ${err}")
endif()
