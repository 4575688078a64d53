// Fitting a piecewise alpha-beta message model to measured message times.
//
// Real MPI switches protocol with message size (eager, rendezvous, ...), so one
// straight line t = alpha + beta * bytes does not fit from 8 B to 64 MiB. The
// fit splits the size-sorted samples into 1..max_segments contiguous runs, fits
// each run by least squares on relative error, picks for each count the split
// with the smallest worst error (dynamic programming over all splits), and keeps
// the fewest segments whose worst relative error is within the target.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "plait/costmodels/costmodels.hpp"

namespace plait::costmodels {

struct MessageSample {
  std::int64_t bytes = 0;
  double seconds = 0;  // one-way time of one message
};

struct MessageFitOptions {
  int max_segments = 6;
  int min_points_per_segment = 2;
  // Keep adding segments until the worst relative error is at most this.
  double target_max_relative_error = 0.05;
};

// Relative error of the model at one measured size.
struct MessageFitError {
  std::int64_t bytes = 0;
  double measured_s = 0;
  double predicted_s = 0;
  double relative_error = 0;  // |predicted - measured| / measured
};

struct MessageFit {
  MessageModel model;
  std::vector<MessageFitError> errors;  // one per sample, sorted by size
  double max_relative_error = 0;
};

// Throws plait::Error on fewer than 2 samples, non-positive sizes or times.
MessageFit fit_message_model(std::span<const MessageSample> samples,
                             const MessageFitOptions& options = {});

// The model's error at every sample.
std::vector<MessageFitError> message_model_errors(const MessageModel& model,
                                                  std::span<const MessageSample> samples);

// The executor's gradient all-reduce over `replicas` members costs more than
// its messages: packing the gradients, summing the members' and unpacking
// them. Each sample (its time once every member had arrived) less a ring
// all-reduce of its bytes on `model` (2 (replicas - 1) messages of bytes /
// replicas, as the simulator sends them) is fitted as one pass over the
// gradient: the bytes per second returned (least squares on relative error
// over the samples whose remainder is positive; 0 when there is none).
// Throws plait::Error on no samples, non-positive sizes or times, replicas < 2.
double fit_gradient_pass(const MessageModel& model, std::span<const MessageSample> samples, int replicas);

}  // namespace plait::costmodels
