// JSON form of a Program.
//
// {"format": "plait.program", "version": 1,
//  "kind": "mgrit" | "serial" | "gpipe" | "1f1b", "layers": N, "ranks": P,
//  "micro_batches": M (optional, 1), "replicas": D (optional, 1),
//  "virtual_stages": v (optional, 1: chunks of blocks a rank holds),
//  "frozen_blocks": K (optional, 0: blocks 0..K-1 run forward only),
//  "ends_on_first_rank": false (optional: input and loss on each replica's first rank), "tolerance": 0,
//  "forward": {"levels", "coarsening_factor", "relax": "F"|"FCF", "iterations",
//              "skip_first_down_relax", "final_relax"}, "adjoint": {...},
//  "model": {"kind": "transformer"|"linear"|"mlp", ..., "vocab": V (optional, 0: the
//            block stack; > 0: a full GPT step), "tensor_parallel": T (optional, 1),
//            "buffer_blocks": B (optional, 0: serial blocks at each end)},
//  "partition": [0, ..., N] (one entry per chunk of a replica's ranks / T),
//  "work": {"block.fwd": {"flops", "bytes"}, ...},
//  "rank_programs": [{"sections": [{"name", "phase", "iteration", "repeat",
//      "ops": [{"op": "step", "dst": "u[0][3]", "a": "u[0][2]", "level": 0,
//               "block": 2, "span": 1, "graph": "keep", ...}]}]}]}
// "graph": "keep" on a step records its autograd graph for the adjoint;
// "recompute" on a step_adjoint recomputes the forward step, "release" uses
// the kept graph a last time and frees it (see GraphUse). A buffer of
// micro-batch m > 0 is written "u[0][3]@m". A grad_allreduce sums the gradients
// of blocks [block, block + span) over the replicas: {"op": "grad_allreduce",
// "block": 4, "span": 4, "bytes": 3178496}; with "overlap": true it may run while
// the rank computes on, done by the end of the rank's program (--dp-overlap);
// with "per_tensor": true it sums one parameter tensor at a time (fp32 bytes).
// Sharded data parallelism ("zero_stage": 1-3) adds "reduce_scatter" (gradients)
// and "all_gather" (parameters) ops with the same block, span, bytes and overlap fields.
// An update op ({"op": "update", "bytes": ...}) is a full step's optimizer step
// over the rank's parameters. Op fields that are empty/default are left out. Loading validates the result.

#include <nlohmann/json.hpp>

#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"
#include "plait/schedule/program.hpp"
#include "json_fields.hpp"

namespace plait::schedule {
namespace {

using nlohmann::json;
constexpr const char* format_name = "plait.program";

using detail::field;
using detail::integer_value;
using detail::op_from_json;

std::vector<std::int32_t> integer_list(const json& object, const char* key, const std::string& where) {
  const auto& list = field<json>(object, key, where);
  if (!list.is_array()) throw Error(where + "/" + key, "expected an array");
  std::vector<std::int32_t> out;
  out.reserve(list.size());
  for (std::size_t i = 0; i < list.size(); ++i) {
    out.push_back(integer_value<std::int32_t>(list[i], where + "/" + key + "/" + std::to_string(i)));
  }
  return out;
}

template <typename T>
T field_or(const json& object, const char* key, T fallback, const std::string& where) {
  return object.contains(key) ? field<T>(object, key, where) : fallback;
}

json phase_to_json(const PhaseSpec& phase) {
  return {{"levels", phase.levels},
          {"coarsening_factor", phase.coarsening_factor},
          {"relax", to_string(phase.relax)},
          {"iterations", phase.iterations},
          {"skip_first_down_relax", phase.skip_first_down_relax},
          {"final_relax", phase.final_relax}};
}

PhaseSpec phase_from_json(const json& in, const std::string& where) {
  PhaseSpec phase;
  phase.levels = field<std::int32_t>(in, "levels", where);
  phase.coarsening_factor = field<std::int32_t>(in, "coarsening_factor", where);
  try {
    phase.relax = parse_relax(field<std::string>(in, "relax", where));
  } catch (const Error& error) {
    throw error.within(where);
  }
  phase.iterations = field<std::int32_t>(in, "iterations", where);
  phase.skip_first_down_relax = field_or<bool>(in, "skip_first_down_relax", true, where);
  phase.final_relax = field_or<bool>(in, "final_relax", false, where);
  return phase;
}

Phase parse_phase(const std::string& text, const std::string& where) {
  if (text == "forward") return Phase::forward;
  if (text == "adjoint") return Phase::adjoint;
  if (text == "none") return Phase::none;
  throw Error(where + "/phase", "expected forward, adjoint or none, got \"" + text + "\"");
}

}  // namespace

void to_json(json& out, const ModelDesc& model) {
  out = {{"kind", model.kind}, {"tstop", model.tstop}};
  if (model.kind == "transformer") {
    out.update({{"d_model", model.d_model}, {"heads", model.heads}, {"seq", model.seq},
                {"batch", model.batch}, {"mlp_ratio", model.mlp_ratio},
                {"dtype", model.dtype}, {"causal", model.causal}, {"init", model.init}});
    if (model.vocab > 0) out["vocab"] = model.vocab;
    if (model.tensor_parallel != 1) out["tensor_parallel"] = model.tensor_parallel;
    if (model.buffer_blocks != 0) out["buffer_blocks"] = model.buffer_blocks;
    if (model.sequence_parallel) out["sequence_parallel"] = true;
    if (model.selective_recompute) out["selective_recompute"] = true;
  } else {
    out.update({{"lambda", model.lambda}, {"scheme", model.scheme}, {"width", model.width}});
  }
  out["seed"] = model.seed;
}

void from_json(const json& in, ModelDesc& model) {
  const std::string where = "/model";
  ModelDesc defaults;
  model.kind = field<std::string>(in, "kind", where);
  model.tstop = field_or(in, "tstop", defaults.tstop, where);
  model.d_model = field_or(in, "d_model", defaults.d_model, where);
  model.heads = field_or(in, "heads", defaults.heads, where);
  model.seq = field_or(in, "seq", defaults.seq, where);
  model.batch = field_or(in, "batch", defaults.batch, where);
  model.mlp_ratio = field_or(in, "mlp_ratio", defaults.mlp_ratio, where);
  model.dtype = field_or(in, "dtype", defaults.dtype, where);
  model.causal = field_or(in, "causal", defaults.causal, where);
  model.init = field_or(in, "init", defaults.init, where);
  model.vocab = field_or(in, "vocab", defaults.vocab, where);
  model.tensor_parallel = field_or(in, "tensor_parallel", defaults.tensor_parallel, where);
  model.buffer_blocks = field_or(in, "buffer_blocks", defaults.buffer_blocks, where);
  model.sequence_parallel = field_or(in, "sequence_parallel", defaults.sequence_parallel, where);
  model.selective_recompute = field_or(in, "selective_recompute", defaults.selective_recompute, where);
  model.lambda = field_or(in, "lambda", defaults.lambda, where);
  model.scheme = field_or(in, "scheme", defaults.scheme, where);
  model.width = field_or(in, "width", defaults.width, where);
  model.seed = field_or(in, "seed", defaults.seed, where);
  try {
    check_model(model);
  } catch (const Error& error) {
    throw Error(where, error.what());
  }
}

// Everything but the rank programs, which dump_program writes as text.
static json header_json(const Program& program) {
  json work = json::object();
  for (const auto& [key, value] : program.work) {
    work[key] = {{"flops", value.flops}, {"bytes", value.bytes}};
  }
  json header = {{"format", format_name},
          {"version", Program::format_version},
          {"kind", program.kind},
          {"layers", program.layers},
          {"ranks", program.ranks},
          {"micro_batches", program.micro_batches},
          {"replicas", program.replicas},
          {"virtual_stages", program.virtual_stages},
          {"frozen_blocks", program.frozen_blocks},
          {"tolerance", program.tolerance},
          {"forward", phase_to_json(program.forward)},
          {"adjoint", phase_to_json(program.adjoint)},
          {"model", program.model},
          {"partition", program.partition},
          {"work", std::move(work)},
          {"rank_programs", json::array()}};
  if (program.ends_on_first_rank) header["ends_on_first_rank"] = true;
  if (program.zero_stage != 0) header["zero_stage"] = program.zero_stage;
  return header;
}

void to_json(json& out, const Program& program) { out = json::parse(dump_program(program)); }

void from_json(const json& in, Program& program) {
  if (!in.is_object()) throw Error("", "expected a JSON object");
  const auto format = field<std::string>(in, "format", "");
  if (format != format_name) {
    throw Error("/format", "expected \"" + std::string(format_name) + "\", got \"" + format + "\"");
  }
  const auto version = field<int>(in, "version", "");
  if (version != Program::format_version) {
    throw Error("/version", "unsupported version " + std::to_string(version) + " (this plait reads " +
                                std::to_string(Program::format_version) + ")");
  }
  program.kind = field<std::string>(in, "kind", "");
  program.layers = field<std::int32_t>(in, "layers", "");
  program.ranks = field<std::int32_t>(in, "ranks", "");
  program.micro_batches = field_or<std::int32_t>(in, "micro_batches", 1, "");
  program.replicas = field_or<std::int32_t>(in, "replicas", 1, "");
  program.virtual_stages = field_or<std::int32_t>(in, "virtual_stages", 1, "");
  program.frozen_blocks = field_or<std::int32_t>(in, "frozen_blocks", 0, "");
  program.zero_stage = field_or<std::int32_t>(in, "zero_stage", 0, "");
  program.ends_on_first_rank = field_or<bool>(in, "ends_on_first_rank", false, "");
  program.tolerance = field_or<double>(in, "tolerance", 0.0, "");
  program.forward = phase_from_json(field<json>(in, "forward", ""), "/forward");
  program.adjoint = phase_from_json(field<json>(in, "adjoint", ""), "/adjoint");
  program.model = field<json>(in, "model", "").get<ModelDesc>();
  program.partition = integer_list(in, "partition", "");
  program.work.clear();
  const json work = field<json>(in, "work", "");
  for (const auto& [key, value] : work.items()) {
    const std::string where = "/work/" + key;
    const Work entry{field<double>(value, "flops", where), field<double>(value, "bytes", where)};
    if (!(entry.flops >= 0 && entry.bytes >= 0)) throw Error(where, "negative work");
    program.work[key] = entry;
  }
  const auto& ranks = field<json>(in, "rank_programs", "");
  if (!ranks.is_array()) throw Error("/rank_programs", "expected an array");
  program.rank_programs.clear();
  for (std::size_t r = 0; r < ranks.size(); ++r) {
    const std::string rank_where = "/rank_programs/" + std::to_string(r);
    RankProgram rank;
    const auto& sections = field<json>(ranks[r], "sections", rank_where);
    if (!sections.is_array()) throw Error(rank_where + "/sections", "expected an array");
    for (std::size_t s = 0; s < sections.size(); ++s) {
      const std::string where = rank_where + "/sections/" + std::to_string(s);
      Section section;
      section.name = field<std::string>(sections[s], "name", where);
      section.phase = parse_phase(field<std::string>(sections[s], "phase", where), where);
      section.iteration = field_or<bool>(sections[s], "iteration", false, where);
      section.repeat = field<std::int32_t>(sections[s], "repeat", where);
      const auto& ops = field<json>(sections[s], "ops", where);
      if (!ops.is_array()) throw Error(where + "/ops", "expected an array");
      section.ops.reserve(ops.size());
      for (std::size_t o = 0; o < ops.size(); ++o) {
        section.ops.push_back(op_from_json(ops[o], where + "/ops/" + std::to_string(o)));
      }
      rank.sections.push_back(std::move(section));
    }
    program.rank_programs.push_back(std::move(rank));
  }
}

namespace {

// Writes ops straight to text: the bulk of a Program, ~10x faster than a DOM.
void append_op(std::string& out, const Op& op) {
  const auto buffer = [&](const char* key, const Buffer& value) {
    if (value.empty()) return;
    out += ",\"";
    out += key;
    out += "\":\"";
    out += to_string(value);
    out += '"';
  };
  const auto number = [&](const char* key, std::int64_t value) {
    out += ",\"";
    out += key;
    out += "\":";
    out += std::to_string(value);
  };
  out += "{\"op\":\"";
  out += to_string(op.kind);
  out += '"';
  buffer("dst", op.dst);
  buffer("a", op.a);
  buffer("b", op.b);
  buffer("c", op.c);
  if (is_replica_collective(op.kind)) {
    number("block", op.block);
    number("span", op.span);
    if (op.overlap) out += ",\"overlap\":true";
    if (op.per_tensor) out += ",\"per_tensor\":true";
  }
  if (is_block_step(op.kind)) {
    number("level", op.level);
    number("block", op.block);
    number("span", op.span);
    if (op.accumulate_grad) out += ",\"grad\":true";
    if (op.graph != GraphUse::none) {
      out += ",\"graph\":\"";
      out += to_string(op.graph);
      out += '"';
    }
  }
  if (op.kind == OpKind::send || op.kind == OpKind::recv) {
    number("peer", op.peer);
    number("tag", op.tag);
  }
  if (op.bytes != 0) number("bytes", op.bytes);
  out += '}';
}

}  // namespace

// Same document as to_json, written without building the ops as JSON values.
std::string dump_program(const Program& program) {
  std::string out = header_json(program).dump();
  const std::string empty_ranks = "\"rank_programs\":[]";
  const auto at = out.find(empty_ranks);
  std::string ranks = "\"rank_programs\":[";
  for (std::size_t r = 0; r < program.rank_programs.size(); ++r) {
    ranks += r ? ",{\"sections\":[" : "{\"sections\":[";
    const auto& sections = program.rank_programs[r].sections;
    for (std::size_t s = 0; s < sections.size(); ++s) {
      const Section& section = sections[s];
      if (s) ranks += ',';
      ranks += json({{"name", section.name}, {"phase", to_string(section.phase)},
                     {"iteration", section.iteration}, {"repeat", section.repeat}}).dump();
      ranks.pop_back();  // reopen the object for its ops
      ranks += ",\"ops\":[";
      for (std::size_t i = 0; i < section.ops.size(); ++i) {
        if (i) ranks += ',';
        append_op(ranks, section.ops[i]);
      }
      ranks += "]}";
    }
    ranks += "]}";
  }
  ranks += ']';
  out.replace(at, empty_ranks.size(), ranks);
  return out;
}

void save_program(const Program& program, const std::string& path) {
  write_text_file(path, dump_program(program) + '\n');
}

}  // namespace plait::schedule
