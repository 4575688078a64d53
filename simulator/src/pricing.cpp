// The default pricing of a platform's devices: measured profile, else the
// analytic roofline model on the device's sheet.

#include <cmath>
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

namespace {

class ScaledPricer final : public costmodels::OpPricer {
 public:
  ScaledPricer(std::shared_ptr<const costmodels::OpPricer> inner, double scale)
      : inner_(std::move(inner)), scale_(scale) {}
  double op_seconds(const schedule::Program& program, const schedule::Op& op) const override {
    return scale_ * inner_->op_seconds(program, op);
  }
  double idle_factor(const schedule::Program& program, double idle_s) const override {
    return inner_->idle_factor(program, idle_s);
  }

 private:
  std::shared_ptr<const costmodels::OpPricer> inner_;
  double scale_;
};

}  // namespace

bool valid_compute_scale(double compute_scale) { return compute_scale > 0 && std::isfinite(compute_scale); }

std::shared_ptr<const costmodels::OpPricer> scaled_pricer(std::shared_ptr<const costmodels::OpPricer> pricer,
                                                          double compute_scale) {
  if (!valid_compute_scale(compute_scale)) throw Error("compute scale", "must be a finite number > 0");
  if (compute_scale == 1) return pricer;
  return std::make_shared<const ScaledPricer>(std::move(pricer), compute_scale);
}

PricerFactory scaled_pricers(PricerFactory pricers, double compute_scale) {
  if (!valid_compute_scale(compute_scale)) throw Error("compute scale", "must be a finite number > 0");
  if (compute_scale == 1) return pricers;
  return [pricers = std::move(pricers), compute_scale](const DeviceUse& use) {
    return scaled_pricer(pricers(use), compute_scale);
  };
}

}  // namespace plait::simulator
