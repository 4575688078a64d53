// Disturbance: a busy loop between two moments; parse_disturb_window.
#include <chrono>
#include <cmath>
#include <cstdlib>

#include "detail/disturbance.hpp"
#include "plait/experiments/sweep.hpp"
#include "plait/schedule/error.hpp"

namespace plait::experiments {
namespace detail {

Disturbance::Disturbance(double start_s, double stop_s) {
  using clock = std::chrono::steady_clock;
  const auto at = [now = clock::now()](double seconds) {
    return now + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds));
  };
  thread_ = std::thread([this, start = at(start_s), stop = at(stop_s)] {
    while (!over_ && clock::now() < start) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    volatile double sink = 1;  // work the compiler cannot drop
    while (!over_ && clock::now() < stop)
      for (int i = 0; i < 100000; ++i) sink = sink * 1.0000001 + 1e-9;
  });
}

Disturbance::~Disturbance() {
  over_ = true;
  thread_.join();
}

}  // namespace detail

std::pair<double, double> parse_disturb_window(const std::string& text) {
  const auto colon = text.find(':');
  const auto seconds = [&](const std::string& part) {
    char* end = nullptr;
    const double value = std::strtod(part.c_str(), &end);
    if (part.empty() || *end != '\0' || !std::isfinite(value) || value < 0)
      throw Error("--disturb", "\"" + text + "\" is not START:STOP in seconds (e.g. 180:360)");
    return value;
  };
  if (colon == std::string::npos) throw Error("--disturb", "\"" + text + "\" is not START:STOP in seconds (e.g. 180:360)");
  const double start = seconds(text.substr(0, colon)), stop = seconds(text.substr(colon + 1));
  if (stop <= start) throw Error("--disturb", "\"" + text + "\": STOP must come after START");
  return {start, stop};
}

}  // namespace plait::experiments
