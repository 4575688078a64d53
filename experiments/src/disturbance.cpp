// Disturbance: a detached busy process between two moments; parse_disturb_window.
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>

#include "detail/disturbance.hpp"
#include "plait/experiments/sweep.hpp"
#include "plait/schedule/error.hpp"

namespace plait::experiments {
namespace detail {
namespace {

double monotonic_s() {  // async-signal-safe, as a forked child of a threaded process needs
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return double(now.tv_sec) + double(now.tv_nsec) * 1e-9;
}

[[noreturn]] void spin(double start, double stop) {
  while (monotonic_s() < start) ::usleep(50000);
  volatile double sink = 1;  // work the compiler cannot drop
  while (monotonic_s() < stop)
    for (int i = 0; i < 100000; ++i) sink = sink * 1.0000001 + 1e-9;
  ::_exit(0);
}

}  // namespace

// Forked twice, so that the spinner is init's child, not the sweep's: its CPU
// time is other work to the sweep's own measurements (HostMonitor's tree).
Disturbance::Disturbance(double start_s, double stop_s) {
  const double now = monotonic_s();
  int channel[2];
  if (::pipe(channel) != 0) throw Error("--disturb", "cannot make a pipe");
  const pid_t middle = ::fork();
  if (middle < 0) throw Error("--disturb", "cannot fork");
  if (middle == 0) {
    const pid_t spinner = ::fork();
    if (spinner == 0) spin(now + start_s, now + stop_s);
    [[maybe_unused]] const auto written = ::write(channel[1], &spinner, sizeof spinner);
    ::_exit(0);
  }
  ::waitpid(middle, nullptr, 0);
  if (::read(channel[0], &spinner_, sizeof spinner_) != sizeof spinner_) spinner_ = -1;
  ::close(channel[0]);
  ::close(channel[1]);
}

Disturbance::~Disturbance() {
  if (spinner_ > 0) ::kill(spinner_, SIGKILL);
}

}  // namespace detail

std::pair<double, double> parse_disturb_window(const std::string& text) {
  const Error malformed("--disturb", "\"" + text + "\" is not START:STOP in seconds (e.g. 180:360)");
  const auto colon = text.find(':');
  const auto seconds = [&](const std::string& part) {
    char* end = nullptr;
    const double value = std::strtod(part.c_str(), &end);
    if (part.empty() || *end != '\0' || !std::isfinite(value) || value < 0) throw malformed;
    return value;
  };
  if (colon == std::string::npos) throw malformed;
  const double start = seconds(text.substr(0, colon)), stop = seconds(text.substr(colon + 1));
  if (stop <= start) throw Error("--disturb", "\"" + text + "\": STOP must come after START");
  return {start, stop};
}

}  // namespace plait::experiments
