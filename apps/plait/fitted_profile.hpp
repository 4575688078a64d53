// What calibrate --from-steps and --from-trace share: the platform's device
// sheet they fit, and the profile they write (from_steps_command.cpp).
#pragma once

#include <string>

#include "plait/costmodels/profile.hpp"
#include "plait/simulator/platform.hpp"

namespace plait::cli {

// The sheet of the platform's devices; plait::Error when they name none.
costmodels::DeviceSheet fitted_device_sheet(const simulator::PlatformSpec& platform, const std::string& name);

// A profile of the fitted device: `sheet` fitted on `fitted_on` (a file), `what` it was.
costmodels::Profile fitted_profile(const costmodels::DeviceSheet& fitted, const std::string& sheet,
                                   const std::string& fitted_on, const std::string& what);

}  // namespace plait::cli
