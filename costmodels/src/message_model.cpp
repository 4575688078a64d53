// MessageModel evaluation and the piecewise alpha-beta fit (see message_fit.hpp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>

#include "detail/line_fit.hpp"
#include "plait/costmodels/message_fit.hpp"
#include "plait/schedule/error.hpp"

namespace plait::costmodels {

double MessageModel::seconds(std::int64_t bytes) const {
  if (segments.empty()) return 0;
  for (const MessageSegment& segment : segments) {
    if (bytes <= segment.max_bytes) {
      return segment.latency_s + segment.seconds_per_byte * static_cast<double>(bytes);
    }
  }
  const MessageSegment& last = segments.back();
  return last.latency_s + last.seconds_per_byte * static_cast<double>(bytes);
}

namespace {

using detail::Line;

Line fit_line(std::span<const MessageSample> points, std::size_t first, std::size_t last) {
  std::vector<std::pair<double, double>> xy;
  for (std::size_t i = first; i <= last; ++i) {
    xy.emplace_back(static_cast<double>(points[i].bytes), points[i].seconds);
  }
  return detail::fit_relative_line(xy);
}

// How well a run of points is fitted: worst relative error first, then the sum
// of squared relative errors (which breaks ties between equally bad splits).
struct SplitCost {
  double worst = 0;
  double squares = 0;
  friend bool operator<(const SplitCost& x, const SplitCost& y) {
    return x.worst != y.worst ? x.worst < y.worst : x.squares < y.squares;
  }
  SplitCost and_then(const SplitCost& next) const {
    return {std::max(worst, next.worst), squares + next.squares};
  }
};

SplitCost split_cost(std::span<const MessageSample> points, std::size_t first, std::size_t last,
                     const Line& line) {
  SplitCost cost;
  for (std::size_t i = first; i <= last; ++i) {
    const double predicted = line.alpha + line.beta * static_cast<double>(points[i].bytes);
    const double relative = std::abs(predicted - points[i].seconds) / points[i].seconds;
    cost.worst = std::max(cost.worst, relative);
    cost.squares += relative * relative;
  }
  return cost;
}

// Samples of equal size averaged, sorted by size.
std::vector<MessageSample> average_by_size(std::span<const MessageSample> samples) {
  std::map<std::int64_t, std::pair<double, int>> sums;
  for (const MessageSample& sample : samples) {
    if (sample.bytes <= 0) {
      throw Error("message fit", "sample size " + std::to_string(sample.bytes) + " B is not positive");
    }
    if (!(sample.seconds > 0) || !std::isfinite(sample.seconds)) {
      throw Error("message fit", "sample at " + std::to_string(sample.bytes) +
                                     " B has non-positive time " + std::to_string(sample.seconds));
    }
    auto& [sum, count] = sums[sample.bytes];
    sum += sample.seconds, ++count;
  }
  std::vector<MessageSample> points;
  for (const auto& [bytes, sum_count] : sums) {
    points.push_back({bytes, sum_count.first / sum_count.second});
  }
  return points;
}

// Best split of `points` into exactly `segments` runs (smallest worst relative
// error, then smallest squares), by dynamic programming; returns the run ends
// (inclusive), or nothing when there are too few points.
std::vector<std::size_t> best_split(std::span<const MessageSample> points, int segments,
                                    int min_points) {
  const std::size_t n = points.size();
  const double infinity = std::numeric_limits<double>::infinity();
  const SplitCost impossible{infinity, infinity};
  std::vector<std::vector<SplitCost>> cost(n, std::vector<SplitCost>(n, impossible));
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + min_points - 1; j < n; ++j) {
      cost[i][j] = split_cost(points, i, j, fit_line(points, i, j));
    }
  }
  // best[k][j]: k+1 runs covering points 0..j; from[k][j]: start of the last run.
  std::vector<std::vector<SplitCost>> best(segments, std::vector<SplitCost>(n, impossible));
  std::vector<std::vector<std::size_t>> from(segments, std::vector<std::size_t>(n, 0));
  for (std::size_t j = 0; j < n; ++j) best[0][j] = cost[0][j];
  for (int k = 1; k < segments; ++k) {
    for (std::size_t j = 0; j < n; ++j) {
      for (std::size_t i = 1; i <= j; ++i) {
        const SplitCost total = best[k - 1][i - 1].and_then(cost[i][j]);
        if (total < best[k][j]) best[k][j] = total, from[k][j] = i;
      }
    }
  }
  if (!std::isfinite(best[segments - 1][n - 1].worst)) return {};
  std::vector<std::size_t> ends(segments);
  std::size_t end = n - 1;
  for (int k = segments - 1; k >= 0; --k) {
    ends[k] = end;
    if (k > 0) end = from[k][end] - 1;
  }
  return ends;
}

// A segment whose times do not rise with size (small messages, all latency
// and noise) gets the slope of the nearest segment that has one: a message
// model prices every byte (the simulator refuses a free one), and the link's
// bandwidth is what the larger messages measured. No slope at all: 1 ns/B.
MessageModel model_from_split(std::span<const MessageSample> points,
                              const std::vector<std::size_t>& ends) {
  MessageModel model;
  std::size_t first = 0;
  for (std::size_t end : ends) {
    const Line line = fit_line(points, first, end);
    model.segments.push_back({points[end].bytes, line.alpha, line.beta});
    first = end + 1;
  }
  std::vector<MessageSegment>& segments = model.segments;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (segments[i].seconds_per_byte > 0) continue;
    double slope = 1e-9;
    for (std::size_t distance = 1; distance < segments.size(); ++distance) {
      if (i + distance < segments.size() && segments[i + distance].seconds_per_byte > 0) {
        slope = segments[i + distance].seconds_per_byte;
        break;
      }
      if (i >= distance && segments[i - distance].seconds_per_byte > 0) {
        slope = segments[i - distance].seconds_per_byte;
        break;
      }
    }
    segments[i].seconds_per_byte = slope;
  }
  return model;
}

double max_error(const std::vector<MessageFitError>& errors) {
  double worst = 0;
  for (const MessageFitError& error : errors) worst = std::max(worst, error.relative_error);
  return worst;
}

}  // namespace

std::vector<MessageFitError> message_model_errors(const MessageModel& model,
                                                  std::span<const MessageSample> samples) {
  std::vector<MessageFitError> errors;
  for (const MessageSample& sample : samples) {
    const double predicted = model.seconds(sample.bytes);
    errors.push_back({sample.bytes, sample.seconds, predicted,
                      std::abs(predicted - sample.seconds) / sample.seconds});
  }
  std::sort(errors.begin(), errors.end(),
            [](const auto& x, const auto& y) { return x.bytes < y.bytes; });
  return errors;
}

MessageFit fit_message_model(std::span<const MessageSample> samples,
                             const MessageFitOptions& options) {
  const std::vector<MessageSample> points = average_by_size(samples);
  const int min_points = std::max(1, options.min_points_per_segment);
  if (points.size() < static_cast<std::size_t>(std::max(2, min_points))) {
    throw Error("message fit", "need at least " + std::to_string(std::max(2, min_points)) +
                                   " distinct message sizes, got " + std::to_string(points.size()));
  }
  MessageFit chosen;
  SplitCost chosen_cost{std::numeric_limits<double>::infinity(), 0};
  for (int segments = 1; segments <= std::max(1, options.max_segments); ++segments) {
    const auto ends = best_split(points, segments, min_points);
    if (ends.empty()) break;  // not enough points for this many runs
    MessageFit fit;
    fit.model = model_from_split(points, ends);
    fit.errors = message_model_errors(fit.model, points);
    fit.max_relative_error = max_error(fit.errors);
    SplitCost cost{fit.max_relative_error, 0};
    for (const MessageFitError& error : fit.errors) {
      cost.squares += error.relative_error * error.relative_error;
    }
    // More segments only when they fit better: a lower worst error, or (when one
    // size no split can fix decides the worst) lower errors elsewhere.
    if (cost < chosen_cost) chosen = std::move(fit), chosen_cost = cost;
    if (chosen.max_relative_error <= options.target_max_relative_error) break;
  }
  return chosen;
}

double fit_gradient_pass(const MessageModel& model, std::span<const MessageSample> samples, int replicas) {
  if (replicas < 2) throw Error("gradient pass fit", "needs at least 2 replicas, got " + std::to_string(replicas));
  if (samples.empty()) throw Error("gradient pass fit", "no samples");
  // Minimises sum (x * bytes / remainder - 1)^2 over x = 1 / rate.
  double sum = 0, squares = 0;
  for (const MessageSample& sample : average_by_size(samples)) {
    const double ring = 2.0 * (replicas - 1) * model.seconds(sample.bytes / replicas);
    const double remainder = sample.seconds - ring;
    if (!(remainder > 0)) continue;
    const double ratio = static_cast<double>(sample.bytes) / remainder;
    sum += ratio, squares += ratio * ratio;
  }
  return sum > 0 ? squares / sum : 0;
}

}  // namespace plait::costmodels
