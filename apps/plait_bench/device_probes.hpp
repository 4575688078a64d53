// Device probes for the measured device sheet: a large GEMM (peak FLOP/s the
// executor's LibTorch reaches) and a large copy (memory bandwidth).
#pragma once

#include <string>

namespace plait_bench {

// "device.gemm/n1024" (counter flop_rate) and "device.stream/mib64" (bytes_per_second).
void register_device_probes(const std::string& device);
std::string torch_version();

}  // namespace plait_bench
