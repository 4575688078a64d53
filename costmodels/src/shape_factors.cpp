// Per-shape corrections on top of a pricer (ShapeFactors in costmodels.hpp).
#include "plait/costmodels/profile.hpp"
#include "plait/schedule/cost_keys.hpp"

namespace plait::costmodels {
namespace {

class ShapeCorrectedPricer final : public OpPricer {
 public:
  ShapeCorrectedPricer(std::unique_ptr<OpPricer> base, std::vector<ShapeFactors> factors)
      : base_(std::move(base)), factors_(std::move(factors)) {}

  double op_seconds(const schedule::Program& program, const schedule::Op& op) const override {
    const double seconds = base_->op_seconds(program, op);
    const bool block = schedule::is_block_step(op.kind);
    const std::string_view key = block ? std::string_view() : schedule::cost_key(op);
    if (!block && key != schedule::cost_keys::input && key != schedule::cost_keys::loss) return seconds;
    const schedule::ModelDesc shape = schedule::micro_batch_model(program);
    for (const ShapeFactors& factors : factors_)
      if (same_shape(factors.shape, shape)) return seconds * (block ? factors.block : factors.ends);
    return seconds;
  }

  double idle_factor(const schedule::Program& program, double idle_s) const override {
    return base_->idle_factor(program, idle_s);
  }

 private:
  std::unique_ptr<OpPricer> base_;
  std::vector<ShapeFactors> factors_;
};

}  // namespace

std::unique_ptr<OpPricer> make_shape_corrected_pricer(std::unique_ptr<OpPricer> base,
                                                      std::vector<ShapeFactors> factors) {
  if (factors.empty()) return base;
  return std::make_unique<ShapeCorrectedPricer>(std::move(base), std::move(factors));
}

}  // namespace plait::costmodels
