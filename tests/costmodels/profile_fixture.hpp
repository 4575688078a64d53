// A small valid profile shared by the profile and pricer tests.
#pragma once

#include "plait/costmodels/profile.hpp"

namespace plait::costmodels::testing {

inline Profile small_profile() {
  Profile profile;
  profile.machine = {"AMD EPYC", 2, 1, "1.13.1", "cpu", "2026-11-23T12:00:00Z", "cpu_time"};
  profile.device = {"local-cpu", 150e9, 300e9, 20e9, 0.5};
  const schedule::ModelDesc shape = parse_shape_name("d256.h4.s128.b8.r4.fp32.causal");
  profile.ops.push_back({"block.fwd", shape, {0.0205, 0.02, 0.019, 0.001, 3},
                         Timing{0.0215, 0.021, 0.0205, 0.002, 6}});
  profile.ops.push_back({"vec.copy", shape, {1.1e-4, 1e-4, 0.9e-4, 1e-6, 3}, std::nullopt});
  profile.fits["block.fwd"] = {0.4, 1e-4, 1.05};
  NetworkProfile network;
  network.pingpong = {{8, {0.41e-6, 0.4e-6, 0.39e-6, 0.01e-6, 5}},
                      {4096, {3.9e-6, 3.8e-6, 3.7e-6, 0.1e-6, 5}}};
  network.allreduce = {{8, {1.1e-6, 1e-6, 0.95e-6, 0.1e-6, 5}}};
  network.model.segments = {{512, 0.4e-6, 0}, {1 << 30, 3e-6, 2e-10}};
  network.gradient_allreduce = {{4198656, {3.7e-3, 3.4e-3, 3.2e-3, 0.5e-3, 5}}};
  network.gradient_pass_bytes_per_s = 1.3e9;
  profile.network = network;
  profile.speed_references.push_back({shape, 0.0195, 0.0208, {0.45, 3e-3}, 1.2});
  schedule::ModelDesc gpt = parse_shape_name("d1024.h16.s1024.b2.r4.fp16.causal");
  gpt.tensor_parallel = 2, gpt.vocab = 50432;
  profile.shape_factors.push_back({gpt, 1.19, 0.81, 72});
  return profile;
}

}  // namespace plait::costmodels::testing
