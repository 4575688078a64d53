// The default pricing of a platform's devices: measured profile, else the
// analytic roofline model on the device's sheet.

#include <map>
#include <memory>

#include "plait/costmodels/costmodels.hpp"
#include "plait/costmodels/profile.hpp"
#include "plait/schedule/error.hpp"
#include "plait/simulator/simulator.hpp"

namespace plait::simulator {

PricerFactory default_pricers(const std::string& profile_override) {
  // Profiles are loaded once, whichever contention they are asked for.
  auto profiles = std::make_shared<std::map<std::string, std::shared_ptr<const costmodels::Profile>>>();
  return [profile_override, profiles](const DeviceUse& use) -> std::shared_ptr<const costmodels::OpPricer> {
    const std::string& path = profile_override.empty() ? use.device.profile : profile_override;
    if (!path.empty()) {
      auto& profile = (*profiles)[path];
      if (!profile) profile = std::make_shared<const costmodels::Profile>(costmodels::load_profile(path));
      return costmodels::make_profile_pricer(
          *profile, use.ranks_on_node > 1 ? costmodels::Contention::contended : costmodels::Contention::alone);
    }
    if (use.device.sheet.empty()) throw Error("device", "names no device sheet (and no profile was given)");
    return costmodels::make_analytic_pricer(costmodels::device_sheet(use.device.sheet));
  };
}

}  // namespace plait::simulator
