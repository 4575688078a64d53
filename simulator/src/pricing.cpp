// The default pricing of a platform's devices: measured profile, else the
// analytic roofline model on the device's sheet.

#include "plait/costmodels/costmodels.hpp"
#include "plait/costmodels/profile.hpp"
#include "plait/schedule/error.hpp"
#include "plait/simulator/simulator.hpp"

namespace plait::simulator {

PricerFactory default_pricers(const std::string& profile_override) {
  return [profile_override](const DeviceSpec& device) -> std::shared_ptr<const costmodels::OpPricer> {
    const std::string& profile = profile_override.empty() ? device.profile : profile_override;
    if (!profile.empty()) return costmodels::make_profile_pricer(costmodels::load_profile(profile));
    if (device.sheet.empty())
      throw Error("device", "names no device sheet (and no profile was given)");
    return costmodels::make_analytic_pricer(costmodels::device_sheet(device.sheet));
  };
}

}  // namespace plait::simulator
