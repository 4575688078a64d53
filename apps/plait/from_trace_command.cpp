// `plait calibrate --from-trace`: fit a GPU's kernel model to the kernels of a
// recorded trace, on a platform's device sheet.
#include <cstdio>

#include "commands.hpp"
#include "fitted_profile.hpp"
#include "plait/costmodels/trace_fit.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"
#include "plait/simulator/platform.hpp"
#include "plait/traces/trace.hpp"

namespace plait::cli {

namespace cm = plait::costmodels;

void run_calibrate_from_trace(const FromStepsArgs& args) {
  if (args.platform.empty()) throw Error("--from-trace", "needs --platform (the devices that ran the trace)");
  const simulator::PlatformSpec platform = simulator::load_platform(simulator::find_platform(args.platform));
  const cm::DeviceSheet sheet = fitted_device_sheet(platform, args.platform);
  cm::TraceKernelFit fit;
  try {
    fit = cm::fit_trace_kernels(traces::load_trace(args.trace), sheet);
  } catch (const Error& error) {
    throw error.within(args.trace);
  }
  cm::save_profile(fitted_profile(fit.device, sheet.name, args.trace, "a recorded trace"), args.output);
  const std::string report = cm::format_trace_fit(fit, sheet, args.trace);
  if (!args.report.empty()) write_text_file(args.report, report);
  std::printf("%s\nprofile: %s\n", report.c_str(), args.output.c_str());
}

}  // namespace plait::cli
