// Measured all-reduce times (nccl-tests output as CSV) and the ring model
// fitted to them, as one node of GPUs runs NCCL's ring.
//
// The ring all-reduce of S bytes over G devices takes 2 (G - 1) steps, each a
// fixed step latency (kernel and protocol) plus a G-th of the buffer over a
// link, and one pass over the buffer that does not shrink with G (measured on
// A100s: without it one link bandwidth misses 2 GPUs by 18 % when fitted on 8):
//   t = 2 (G - 1) step_latency + 2 (G - 1) / G S / link_bandwidth + S / pass_bandwidth
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace plait::costmodels {

struct AllreduceSample {
  std::int64_t bytes = 0;
  double seconds = 0;  // nccl-tests' out-of-place time
};

struct AllreduceMeasurements {
  int devices = 0;
  std::string origin;
  std::vector<AllreduceSample> samples;
};

// nccl-tests CSV: a header naming "size(B)" and "time(ns)" (the first, out of
// place; other columns ignored), then one row per size. Throws plait::Error
// "<origin>: line <n>, <column>: <reason>" for a bad row (a size or time that is
// not a positive number, a missing field), or no rows.
AllreduceMeasurements parse_allreduce_csv(const std::string& text, int devices, const std::string& origin);
AllreduceMeasurements load_allreduce_csv(const std::string& path, int devices);

struct RingAllreduceModel {
  double step_latency_s = 0;
  double link_bytes_per_s = 0;
  double pass_bytes_per_s = 0;
  double seconds(int devices, double bytes) const;
};

struct RingAllreduceFit {
  RingAllreduceModel model;
  // One standard error of each parameter, relative to it (step latency, link, pass).
  std::array<double, 3> relative_uncertainty{};
  int samples = 0;
};

// Least squares on relative error over the samples of at least min_bytes of
// every set. Throws plait::Error when fewer than 3 samples are left, fewer than
// two device counts (the link and the pass cannot be told apart), or a
// parameter comes out not positive.
RingAllreduceFit fit_ring_allreduce(const std::vector<AllreduceMeasurements>& sets, std::int64_t min_bytes);

}  // namespace plait::costmodels
