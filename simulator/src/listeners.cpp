#include "listeners.hpp"

#include "plait/traces/trace.hpp"

namespace plait::simulator {

namespace detail {

void RankAccounting::on_op(const OpEvent& event) {
  RankReport& report = reports_[static_cast<std::size_t>(event.rank)];
  report.rank = event.rank;
  const double duration = event.end - event.start;
  if (event.op_ref != nullptr && schedule::is_communication(event.op_ref->kind)) {
    report.idle_s += event.waiting_s;
    report.communication_s += duration - event.waiting_s;
  } else {
    report.busy_s += duration;
  }
  last_end_[static_cast<std::size_t>(event.rank)] = event.end;
}

void RankAccounting::on_finish(double makespan_s) {
  for (std::size_t r = 0; r < reports_.size(); ++r) {
    reports_[r].rank = static_cast<int>(r);
    reports_[r].idle_s += makespan_s - last_end_[r];
  }
}

}  // namespace detail

TraceWriter::TraceWriter(std::string path) : path_(std::move(path)), trace_(std::make_unique<traces::Trace>()) {
  trace_->source = "predicted";
}
TraceWriter::~TraceWriter() = default;

void TraceWriter::on_start(int ranks) { trace_->ranks = ranks; }

void TraceWriter::on_op(const OpEvent& event) {
  trace_->events.push_back(traces::Event{event.rank, event.section, event.repetition, event.op,
                                         std::string(event.cost_key), event.level, event.point, event.start,
                                         event.end, event.bytes, event.peer});
}

void TraceWriter::on_finish(double /*makespan_s*/) { traces::save_trace(*trace_, path_); }

}  // namespace plait::simulator
