// Listeners the simulator always attaches.
#pragma once

#include <vector>

#include "plait/simulator/simulator.hpp"

namespace plait::simulator::detail {

// Busy / communication / idle per rank: compute ops are busy; a communication
// op is idle while the awaited message was not yet sent, communication after.
// The time after a rank's last op, up to the makespan, is idle.
class RankAccounting final : public EventListener {
 public:
  explicit RankAccounting(int ranks) : reports_(static_cast<std::size_t>(ranks)), last_end_(reports_.size(), 0) {}
  void on_op(const OpEvent& event) override;
  void on_finish(double makespan_s) override;
  const std::vector<RankReport>& reports() const { return reports_; }
  std::vector<RankReport>& reports() { return reports_; }

 private:
  std::vector<RankReport> reports_;
  std::vector<double> last_end_;
};

}  // namespace plait::simulator::detail
