// Shipped device and link sheets: public figures, cited per entry.
//
// GPU fp32 figures are the non-tensor-core peaks: LibTorch runs fp32 matmuls
// without TF32 unless told to (torch.backends.cuda.matmul.allow_tf32 = False
// by default since 1.12). bf16 figures are dense tensor-core peaks (no sparsity).
// efficiency stays 1 here; a profile's fit sets it (see fits.cpp).
#include <array>

#include "plait/costmodels/costmodels.hpp"
#include "plait/schedule/error.hpp"

namespace plait::costmodels {
namespace {

const std::array<DeviceSheet, 5> device_sheets = {{
    // One core of this machine's CPU class: AMD EPYC Zen 5 (family 26), 2.6 GHz,
    // AVX-512 with two 512-bit FMA pipes: 2 x 16 lanes x 2 FLOPs x 2.6e9 = 166 GFLOP/s
    // fp32, AVX512_BF16 dot products double that. Bandwidth: what one core streams
    // here (plait-bench device.stream, ~20 GB/s); a profile replaces all three with
    // its measured values (device.gemm, device.stream).
    {"local-cpu", 166.4e9, 332.8e9, 20e9, 1.0, 0},
    // NVIDIA A100 80GB SXM datasheet (2021): FP32 19.5 TFLOP/s, BF16 tensor 312 TFLOP/s,
    // HBM2e 2,039 GB/s.
    {"a100-80gb", 19.5e12, 312e12, 2039e9, 1.0, 80e9},
    // NVIDIA H100 SXM5 datasheet (2023): FP32 67 TFLOP/s, BF16 tensor 989.4 TFLOP/s
    // dense (1,979 with sparsity), HBM3 3.35 TB/s, 80 GB.
    {"h100-sxm", 67e12, 989.4e12, 3.35e12, 1.0, 80e9},
    // NVIDIA H200 SXM datasheet (2024): same GH100 compute as H100 SXM (FP32 67,
    // BF16 989.4 TFLOP/s dense), HBM3e 4.8 TB/s (141 GB).
    {"h200", 67e12, 989.4e12, 4.8e12, 1.0, 141e9},
    // NVIDIA V100 SXM2 32GB datasheet (2018): FP32 15.7 TFLOP/s, HBM2 900 GB/s,
    // 32 GB. It has no bf16: the half-precision column is the FP16 tensor-core
    // peak, 125 TFLOP/s, what fp16 (and autocast) runs at.
    {"v100-sxm2-32gb", 15.7e12, 125e12, 900e9, 1.0, 32e9},
}};

const std::array<LinkSheet, 7> link_sheets = {{
    // NVLink 4 (H100 SXM datasheet): 900 GB/s per GPU, both directions together,
    // so 450 GB/s one way. Latency: a few microseconds through NCCL/CUDA-aware MPI
    // (typical osu_latency figures; not a datasheet number).
    {"nvlink4", 2.0e-6, 450e9},
    // InfiniBand NDR (ConnectX-7, Quantum-2): 400 Gb/s per port = 50 GB/s;
    // MPI latency about 1 us end to end (NVIDIA ConnectX-7 product brief: sub-600 ns
    // adapter latency, plus a switch hop).
    {"infiniband-ndr", 1.0e-6, 50e9},
    // InfiniBand HDR (ConnectX-6, Quantum): 200 Gb/s per port = 25 GB/s; latency as NDR
    // (ConnectX-6 product brief: sub-600 ns adapter latency).
    {"infiniband-hdr", 1.1e-6, 25e9},
    // 100 Gigabit Ethernet (IEEE 802.3ba/bj): 12.5 GB/s line rate; MPI over TCP pays
    // the kernel stack, about 10 us small-message latency (RoCE gets ~2 us).
    {"ethernet-100g", 10e-6, 12.5e9},
    // PCIe 5.0 x16 (PCI-SIG): 32 GT/s x 16 lanes, 128b/130b = 63 GB/s one way;
    // GPU-to-GPU through host memory, latency as a staged copy (~5 us).
    {"pcie5-x16", 5e-6, 63e9},
    // NVLink 2 (V100 SXM2 datasheet): six links of 25 GB/s each way, 150 GB/s one
    // way per GPU, 300 GB/s both ways; latency as NVLink 4 (CUDA-aware MPI, a few us).
    {"nvlink2", 2.5e-6, 150e9},
    // Intel Omni-Path 100 (OPA 100 HFI product brief): 100 Gb/s per port = 12.5 GB/s;
    // MPI latency about 1 us end to end (the brief's sub-microsecond port-to-port
    // latency, plus a switch hop).
    {"omni-path-100", 1.0e-6, 12.5e9},
}};

template <class Sheet, std::size_t N>
const Sheet& find_sheet(const std::array<Sheet, N>& sheets, std::string_view name,
                        const char* what) {
  for (const Sheet& sheet : sheets) {
    if (sheet.name == name) return sheet;
  }
  std::string known;
  for (const Sheet& sheet : sheets) known += (known.empty() ? "" : ", ") + sheet.name;
  throw Error(what, "unknown sheet \"" + std::string(name) + "\" (known: " + known + ")");
}

}  // namespace

DeviceSheet device_sheet(std::string_view name) {
  return find_sheet(device_sheets, name, "device sheet");
}

LinkSheet link_sheet(std::string_view name) { return find_sheet(link_sheets, name, "link sheet"); }

std::vector<std::string> device_sheet_names() {
  std::vector<std::string> names;
  for (const DeviceSheet& sheet : device_sheets) names.push_back(sheet.name);
  return names;
}

std::vector<std::string> link_sheet_names() {
  std::vector<std::string> names;
  for (const LinkSheet& sheet : link_sheets) names.push_back(sheet.name);
  return names;
}

}  // namespace plait::costmodels
