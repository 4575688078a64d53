#include "listeners.hpp"

#include <fstream>

#include <nlohmann/json.hpp>

#include "plait/schedule/error.hpp"

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

struct TraceWriter::Row {
  int rank, section, op, level, point, peer;
  std::string_view cost_key;
  double start, end;
  std::int64_t bytes;
};

TraceWriter::TraceWriter(std::string path) : path_(std::move(path)) {}
TraceWriter::~TraceWriter() = default;

void TraceWriter::on_op(const OpEvent& event) {
  rows_.push_back(Row{event.rank, event.section, event.op, event.level, event.point, event.peer, event.cost_key,
                      event.start, event.end, event.bytes});
}

void TraceWriter::on_finish(double /*makespan_s*/) {
  std::ofstream file(path_);
  if (!file) throw Error(path_, "cannot write trace file");
  // Streamed by hand: a trace of a large run has millions of events.
  file << "{\"format\":\"plait.trace\",\"version\":1,\"source\":\"simulator\",\"events\":[\n";
  file.precision(17);
  for (std::size_t i = 0; i < rows_.size(); ++i) {
    const Row& row = rows_[i];
    file << (i == 0 ? "" : ",\n") << "{\"rank\":" << row.rank << ",\"section\":" << row.section
         << ",\"op\":" << row.op << ",\"cost_key\":" << nlohmann::json(std::string(row.cost_key)).dump()
         << ",\"level\":" << row.level << ",\"point\":" << row.point << ",\"start\":" << row.start
         << ",\"end\":" << row.end << ",\"bytes\":" << row.bytes << ",\"peer\":" << row.peer << "}";
  }
  file << "\n]}\n";
  if (!file) throw Error(path_, "failed writing trace file");
}

}  // namespace plait::simulator
