// The ring all-reduce model: nccl-tests CSV read with located errors, and the
// fit recovering known figures from times the model itself made.
#include <gtest/gtest.h>

#include <cstdio>

#include "error_text.hpp"
#include "plait/costmodels/allreduce_fit.hpp"

namespace plait::costmodels {
namespace {

using plait::testing::error_of;

const RingAllreduceModel known{.step_latency_s = 8e-6, .link_bytes_per_s = 300e9, .pass_bytes_per_s = 500e9};

// nccl-tests' columns, out-of-place time from `model` (scaled by 1 + noise[i % 3]).
std::string nccl_csv(int devices, const RingAllreduceModel& model, double noise = 0) {
  std::string text = "size(B),count,type,time(ns),busbw(GB/s),time(ns),busbw(GB/s)\n";
  for (int mib = 1; mib <= 64; mib *= 2) {
    const double bytes = double(mib) * 1048576;
    const double scale = 1 + noise * ((mib % 3) - 1);
    char line[160];
    std::snprintf(line, sizeof line, "%.0f,%.0f,float,%.2f,1.0,%.2f,1.0\n", bytes, bytes / 4,
                  model.seconds(devices, bytes) * scale * 1e9, model.seconds(devices, bytes) * 1e9);
    text += line;
  }
  return text;
}

TEST(AllreduceFit, ReadsTheOutOfPlaceTimeOfNcclTests) {
  const AllreduceMeasurements set = parse_allreduce_csv(nccl_csv(4, known), 4, "ar.csv");
  ASSERT_EQ(set.samples.size(), 7u);
  EXPECT_EQ(set.samples[2].bytes, 4 << 20);
  EXPECT_NEAR(set.samples[2].seconds, known.seconds(4, 4 << 20), 1e-11);
  EXPECT_EQ(set.devices, 4);
}

TEST(AllreduceFit, RecoversTheFiguresThatMadeTheTimes) {
  const RingAllreduceFit fit =
      fit_ring_allreduce({parse_allreduce_csv(nccl_csv(2, known), 2, "a"), parse_allreduce_csv(nccl_csv(8, known), 8, "b")},
                         1 << 20);
  EXPECT_EQ(fit.samples, 14);
  EXPECT_NEAR(fit.model.step_latency_s, known.step_latency_s, 1e-6 * known.step_latency_s);
  EXPECT_NEAR(fit.model.link_bytes_per_s, known.link_bytes_per_s, 1e-6 * known.link_bytes_per_s);
  EXPECT_NEAR(fit.model.pass_bytes_per_s, known.pass_bytes_per_s, 1e-6 * known.pass_bytes_per_s);
  for (const double uncertainty : fit.relative_uncertainty) EXPECT_LT(uncertainty, 1e-6);
  // Noisy times: the figures move, and the fit says by about how much.
  const RingAllreduceFit noisy = fit_ring_allreduce(
      {parse_allreduce_csv(nccl_csv(2, known, 0.03), 2, "a"), parse_allreduce_csv(nccl_csv(8, known, 0.03), 8, "b")},
      1 << 20);
  EXPECT_GT(noisy.relative_uncertainty[1], 1e-4);
  EXPECT_NEAR(noisy.model.link_bytes_per_s, known.link_bytes_per_s, 0.2 * known.link_bytes_per_s);
}

TEST(AllreduceFit, BadInputIsOneLocatedError) {
  std::string bad = nccl_csv(2, known);
  bad.replace(bad.find("\n2097152,") + 1, 7, "2097x52");
  EXPECT_EQ(error_of([&] { parse_allreduce_csv(bad, 2, "ar.csv"); }), "ar.csv: line 3, size(B): \"2097x52\" is not a positive number");
  EXPECT_EQ(error_of([] { parse_allreduce_csv("size(B),count\n1,2\n", 2, "ar.csv"); }),
            "ar.csv: line 1: header has no \"size(B)\" and \"time(ns)\" columns (nccl-tests CSV)");
  EXPECT_EQ(error_of([] { parse_allreduce_csv("size(B),time(ns)\n1024,-5\n", 2, "ar.csv"); }),
            "ar.csv: line 2, time(ns): \"-5\" is not a positive number");
  EXPECT_EQ(error_of([] { parse_allreduce_csv("size(B),time(ns)\n1024\n", 2, "ar.csv"); }),
            "ar.csv: line 2: 1 fields, the header has 2");
  EXPECT_EQ(error_of([] { parse_allreduce_csv(nccl_csv(2, known), 1, "ar.csv"); }),
            "ar.csv: an all-reduce needs 2 devices or more, not 1");
  EXPECT_EQ(error_of([] { fit_ring_allreduce({parse_allreduce_csv(nccl_csv(8, known), 8, "b")}, 1); }),
            "all-reduce fit: measurements of one device count cannot tell the link from the buffer pass: give two "
            "or more (e.g. 2 and 8 GPUs)");
}

}  // namespace
}  // namespace plait::costmodels
