// Measured training steps as CSV (vTrain's columns), and the Megatron step
// each row ran.
#include <cmath>
#include <sstream>

#include "detail/csv.hpp"
#include "plait/costmodels/steps.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"

namespace plait::costmodels {
namespace {

struct Column {
  const char* name;
  int StepMeasurement::*field;  // null: the time
};

constexpr Column columns[] = {
    {"# GPUs", &StepMeasurement::gpus},
    {"global batch", &StepMeasurement::global_batch},
    {"micro batch", &StepMeasurement::micro_batch},
    {"hidden size", &StepMeasurement::hidden},
    {"attention heads", &StepMeasurement::heads},
    {"# layers", &StepMeasurement::layers},
    {"sequence length", &StepMeasurement::seq},
    {"tensor parallelism", &StepMeasurement::tp},
    {"data parallelism", &StepMeasurement::dp},
    {"pipeline parallelism", &StepMeasurement::pp},
    {"iteration time (ms)", nullptr},
};

// The optional columns: what the run ran beyond vTrain's full recompute.
constexpr const char* recompute_column = "recompute";
constexpr const char* sequence_parallel_column = "sequence parallelism";
constexpr const char* zero_column = "ZeRO stage";

std::string trimmed(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\xEF\xBB\xBF");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
}

// Limits keep a bad file from asking for absurd Programs.
constexpr double max_value = 1 << 20;

void check_row(const StepMeasurement& step, const std::string& where) {
  const auto bad = [&](const std::string& column, const std::string& why) { return Error(where + ", " + column, why); };
  if (std::int64_t{step.tp} * step.dp * step.pp != step.gpus)
    throw bad("# GPUs", "tensor x data x pipeline parallelism = " + std::to_string(std::int64_t{step.tp} * step.dp * step.pp) +
                            ", not the " + std::to_string(step.gpus) + " GPUs");
  if (step.global_batch % (std::int64_t{step.micro_batch} * step.dp) != 0)
    throw bad("global batch", std::to_string(step.global_batch) + " is not whole micro-batches of " +
                                  std::to_string(step.micro_batch) + " over " + std::to_string(step.dp) + " replicas");
  if (step.hidden % step.heads != 0)
    throw bad("attention heads", std::to_string(step.heads) + " do not divide the hidden size " + std::to_string(step.hidden));
  if (step.heads % step.tp != 0)
    throw bad("tensor parallelism", std::to_string(step.tp) + " does not divide the " + std::to_string(step.heads) + " heads");
  if (step.pp > step.layers)
    throw bad("pipeline parallelism", std::to_string(step.pp) + " stages for " + std::to_string(step.layers) + " layers");
  if (double(step.global_batch) * step.seq * step.hidden > schedule::max_state_elements)
    throw bad("global batch", "global batch x sequence x hidden is above plait's limit of a state");
  if (step.sequence_parallel && step.tp < 2)
    throw bad(sequence_parallel_column, "splits the sequence over tensor-parallel ranks: it needs tensor parallelism >= 2");
  if (step.sequence_parallel && step.seq % step.tp != 0)
    throw bad(sequence_parallel_column, std::to_string(step.tp) + " does not divide the sequence of " + std::to_string(step.seq));
  if (step.zero > 0 && step.dp < 2)
    throw bad(zero_column, "shards over data-parallel replicas: it needs data parallelism >= 2");
}

// An optional column's value in a row.
void read_optional(const std::string& name, const std::string& field, const std::string& where, StepMeasurement& step) {
  const auto bad = [&](const std::string& expected) {
    return Error(where + ", " + name, "\"" + field + "\" is not " + expected);
  };
  if (name == recompute_column) {
    if (field != "full" && field != "selective" && field != "none") throw bad("full, selective or none");
    step.recompute = field;
  } else if (name == sequence_parallel_column) {
    if (field != "yes" && field != "no") throw bad("yes or no");
    step.sequence_parallel = field == "yes";
  } else {
    if (field.size() != 1 || field[0] < '0' || field[0] > '3') throw bad("a ZeRO stage: 0, 1, 2 or 3");
    step.zero = field[0] - '0';
  }
}

}  // namespace

std::vector<StepMeasurement> parse_step_csv(const std::string& text, const std::string& origin) {
  std::stringstream stream(text);
  std::string line;
  if (!std::getline(stream, line)) throw Error(origin, "empty file (expected a header naming the step columns)");
  const std::vector<std::string> header = detail::split_csv_line(line);
  int index[std::size(columns)];
  for (std::size_t c = 0; c < std::size(columns); ++c) {
    index[c] = -1;
    for (int i = 0; i < static_cast<int>(header.size()) && index[c] < 0; ++i)
      if (trimmed(header[i]) == columns[c].name) index[c] = i;
    if (index[c] < 0) throw Error(origin + ": line 1", "header has no \"" + std::string(columns[c].name) + "\" column");
  }
  std::vector<std::pair<std::string, int>> optional;  // (column, field index)
  for (const char* name : {recompute_column, sequence_parallel_column, zero_column})
    for (int i = 0; i < static_cast<int>(header.size()); ++i)
      if (trimmed(header[i]) == name) optional.emplace_back(name, i);
  std::vector<StepMeasurement> steps;
  for (int number = 2; std::getline(stream, line); ++number) {
    if (trimmed(line).empty()) continue;
    const std::vector<std::string> fields = detail::split_csv_line(line);
    const std::string where = origin + ": line " + std::to_string(number);
    if (fields.size() != header.size())
      throw Error(where, std::to_string(fields.size()) + " fields, the header has " + std::to_string(header.size()));
    StepMeasurement step{.line = number};
    for (std::size_t c = 0; c < std::size(columns); ++c) {
      const std::string field = trimmed(fields[index[c]]);
      const std::optional<double> value = number_of_field(field);
      const std::string column = where + ", " + columns[c].name;
      if (!value || !std::isfinite(*value) || *value <= 0) throw Error(column, "\"" + field + "\" is not a positive number");
      if (columns[c].field == nullptr) {
        step.seconds = *value * 1e-3;
        continue;
      }
      if (*value != std::floor(*value) || *value > max_value)
        throw Error(column, "\"" + field + "\" is not a whole number up to " + std::to_string(int(max_value)));
      step.*columns[c].field = static_cast<int>(*value);
    }
    for (const auto& [name, at] : optional) read_optional(name, trimmed(fields[at]), where, step);
    check_row(step, where);
    steps.push_back(step);
  }
  if (steps.empty()) throw Error(origin, "no measured steps after the header");
  return steps;
}

std::vector<StepMeasurement> load_step_csv(const std::string& path) { return parse_step_csv(read_text_file(path), path); }

int megatron_padded_vocab(int vocab, int tensor_parallel) {
  const int multiple = 128 * tensor_parallel;  // Megatron's --make-vocab-size-divisible-by 128, times TP
  return (vocab + multiple - 1) / multiple * multiple;
}

schedule::BuildSpec megatron_step_spec(const StepMeasurement& step, int vocab) {
  schedule::BuildSpec spec;
  spec.layers = step.layers;
  spec.ranks = step.pp;
  spec.replicas = step.dp;
  spec.micro_batches = step.global_batch / (step.micro_batch * step.dp);
  spec.recompute = step.recompute == "full";
  spec.model.selective_recompute = step.recompute == "selective";
  spec.model.sequence_parallel = step.sequence_parallel;
  spec.zero_stage = step.zero;
  spec.model.d_model = step.hidden;
  spec.model.heads = step.heads;
  spec.model.seq = step.seq;
  spec.model.batch = step.global_batch;
  spec.model.dtype = "fp16";
  spec.model.causal = true;
  spec.model.tensor_parallel = step.tp;
  spec.model.vocab = megatron_padded_vocab(vocab, step.tp);
  return spec;
}

}  // namespace plait::costmodels
