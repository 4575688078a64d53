// Program validation: structure, read-before-write, message matching, and a
// dry run of the message order (sends never block, recvs wait, allreduce waits
// for all) that finds deadlocks and measures the critical path.
#include <algorithm>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>

#include "plait/schedule/error.hpp"
#include "plait/schedule/validate.hpp"

namespace plait::schedule {

std::string Problem::to_string() const {
  std::string where;
  if (rank >= 0) where += "rank " + std::to_string(rank);
  if (!section.empty()) where += ", section " + section;
  if (op >= 0) where += ", op " + std::to_string(op);
  return where.empty() ? reason : where + ": " + reason;
}

namespace {

void check_structure(const Program& program, std::vector<Problem>& problems) {
  const int ranks = program.ranks;
  const auto above_limit = [&](const std::string& what, std::int64_t value, std::int64_t limit) {
    problems.push_back({-1, "", -1, what + " " + std::to_string(value) + " above the limit of " +
                                        std::to_string(limit)});
  };
  if (program.layers > max_layers) above_limit("layers", program.layers, max_layers);
  if (ranks > max_ranks) above_limit("ranks", ranks, max_ranks);
  if (ranks < 1) problems.push_back({-1, "", -1, "ranks must be >= 1"});
  if (program.layers < 1) problems.push_back({-1, "", -1, "layers must be >= 1"});
  if (static_cast<std::int64_t>(program.rank_programs.size()) != ranks) {
    problems.push_back({-1, "", -1, "program says " + std::to_string(ranks) + " ranks but has " +
                                         std::to_string(program.rank_programs.size()) + " rank programs"});
  }
  const std::int32_t replicas = program.replicas;
  if (replicas < 1 || ranks < 1 || ranks % replicas != 0)
    problems.push_back({-1, "", -1, "replicas " + std::to_string(replicas) + " must be >= 1 and divide the " +
                                        std::to_string(ranks) + " ranks"});
  const std::int64_t per_replica = replicas >= 1 && ranks >= 1 && ranks % replicas == 0 ? ranks / replicas : ranks;
  const std::int32_t tp = program.model.tensor_parallel;
  if (tp > 1 && per_replica % tp != 0)
    problems.push_back({-1, "", -1, std::to_string(tp) + " tensor-parallel ranks do not divide the " +
                                        std::to_string(per_replica) + " ranks of a replica"});
  const std::int64_t stages = tp > 1 && per_replica % tp == 0 ? per_replica / tp : per_replica;
  const auto& partition = program.partition;
  const std::int32_t chunks = program.virtual_stages;
  if (chunks < 1 || chunks > max_layers)
    problems.push_back({-1, "", -1, "virtual_stages " + std::to_string(chunks) + " must be >= 1"});
  bool partition_ok = static_cast<std::int64_t>(partition.size()) == stages * std::max(chunks, 1) + 1 &&
                      partition.front() == 0 && partition.back() == program.layers;
  for (std::size_t i = 1; partition_ok && i < partition.size(); ++i) {
    partition_ok = partition[i] > partition[i - 1];
  }
  if (!partition_ok)
    problems.push_back({-1, "", -1, "partition must rise from 0 to layers, one entry per chunk (ranks of a replica / "
                                    "tensor_parallel x virtual_stages) + 1"});
  const std::int32_t frozen = program.frozen_blocks;
  if (frozen < 0 || frozen >= std::max(program.layers, 1))
    problems.push_back({-1, "", -1, "frozen_blocks " + std::to_string(frozen) + " outside 0.." +
                                        std::to_string(program.layers - 1) + " (one block at least must train)"});
  if (program.zero_stage < 0 || program.zero_stage > 3)
    problems.push_back({-1, "", -1, "zero_stage " + std::to_string(program.zero_stage) + " outside 0..3"});
  else if (program.zero_stage > 0 && replicas < 2)
    problems.push_back({-1, "", -1, "zero_stage " + std::to_string(program.zero_stage) +
                                        " shards over the replicas: it needs replicas >= 2"});
  const std::int32_t micro_batches = program.micro_batches;
  if (micro_batches < 1 || micro_batches > max_micro_batches)
    problems.push_back({-1, "", -1, "micro_batches " + std::to_string(micro_batches) + " outside 1.." +
                                        std::to_string(max_micro_batches)});
  else if (const std::int64_t split = std::int64_t{micro_batches} * std::max(replicas, 1);
           split > 1 && (program.model.kind != "transformer" || program.model.batch % split != 0))
    problems.push_back({-1, "", -1, "micro_batches " + std::to_string(micro_batches) + " x replicas " +
                                        std::to_string(replicas) + " must divide the batch of a transformer (batch " +
                                        std::to_string(program.model.batch) + ", model " + program.model.kind + ")"});

  std::int64_t executed_ops = 0;
  for (int r = 0; r < static_cast<int>(program.rank_programs.size()); ++r) {
    for (const auto& section : program.rank_programs[r].sections) {
      if (section.repeat < 0) problems.push_back({r, section.name, -1, "negative repeat count"});
      if (section.repeat > max_repeat) {
        problems.push_back({r, section.name, -1, "repeat " + std::to_string(section.repeat) +
                                                     " above the limit of " + std::to_string(max_repeat)});
      }
      executed_ops += std::int64_t{std::clamp(section.repeat, 0, max_repeat)} *
                      static_cast<std::int64_t>(section.ops.size());
      for (int i = 0; i < static_cast<int>(section.ops.size()); ++i) {
        const Op& op = section.ops[i];
        const auto bad = [&](const std::string& why) { problems.push_back({r, section.name, i, why}); };
        const bool message = op.kind == OpKind::send || op.kind == OpKind::recv;
        if (message && (op.peer < 0 || op.peer >= ranks || op.peer == r)) {
          bad("peer " + std::to_string(op.peer) + " is not another rank");
        }
        if (op.bytes < 0) bad("negative byte count");
        if (is_replica_collective(op.kind) &&
            (op.block < 0 || op.span < 1 || std::int64_t{op.block} + op.span > program.layers)) {
          bad(std::string(to_string(op.kind)) + " of blocks " + std::to_string(op.block) + " + " +
              std::to_string(op.span) + " outside the " + std::to_string(program.layers) + " layers");
        }
        const bool sharded = op.kind == OpKind::reduce_scatter || op.kind == OpKind::all_gather;
        if (sharded && (program.zero_stage < 1 || replicas < 2))
          bad(std::string(to_string(op.kind)) + " shards over the replicas: it needs zero_stage >= 1 and replicas >= 2");
        if (sharded && replicas >= 1 && op.bytes % replicas != 0)
          bad(std::string(to_string(op.kind)) + " of " + std::to_string(op.bytes) + " bytes does not split into " +
              std::to_string(replicas) + " equal shards (pad it to a multiple of the replicas)");
        if (op.kind == OpKind::update && program.model.vocab < 1)
          bad("update (the optimizer step) belongs to a full training step (a model with a vocabulary)");
        if (op.per_tensor && (op.kind != OpKind::grad_allreduce || op.overlap))
          bad(std::string(to_string(op.kind)) + (op.overlap ? " overlapped" : "") +
              " cannot be per_tensor (only a blocking grad_allreduce is)");
        if (op.overlap && !is_replica_collective(op.kind))
          bad(std::string(to_string(op.kind)) +
              " cannot overlap (only a grad_allreduce, reduce_scatter or all_gather does)");
        if ((adds_to_gradient(op) || op.kind == OpKind::grad_allreduce || op.kind == OpKind::reduce_scatter) &&
            op.block < frozen)
          bad(std::string(to_string(op.kind)) + " on block " + std::to_string(op.block) + " of the " +
              std::to_string(frozen) + " frozen blocks (they have no gradients)");
        if (is_block_step(op.kind) && (op.block < 0 || op.span < 1 || op.block >= program.layers)) {
          bad("step block " + std::to_string(op.block) + " / span " + std::to_string(op.span) +
              " outside the " + std::to_string(program.layers) + " layers");
        }
        const bool needs_dst = op.kind != OpKind::send && op.kind != OpKind::record_norm &&
                               !is_replica_collective(op.kind) && op.kind != OpKind::step_weight &&
                               op.kind != OpKind::update;
        if (needs_dst && op.dst.empty()) bad(std::string(to_string(op.kind)) + " without dst");
        const bool needs_a = op.kind == OpKind::copy || op.kind == OpKind::sub || op.kind == OpKind::norm_sq ||
                             is_block_step(op.kind) || op.kind == OpKind::loss || op.kind == OpKind::send ||
                             op.kind == OpKind::record_norm;
        if (needs_a && op.a.empty()) bad(std::string(to_string(op.kind)) + " without source a");
        if ((op.kind == OpKind::step_adjoint || op.kind == OpKind::step_weight) && op.c.empty())
          bad(std::string(to_string(op.kind)) + " without forward state c");
        for (const Buffer* buffer : {&op.dst, &op.a, &op.b, &op.c})
          if (buffer->micro >= std::max(micro_batches, 1))
            bad(to_string(*buffer) + " names micro-batch " + std::to_string(buffer->micro) + " of " +
                std::to_string(micro_batches));
      }
    }
  }
  if (executed_ops > max_executed_ops) above_limit("ops run (repeats counted)", executed_ops, max_executed_ops);
}

// Every buffer an op reads must have been written earlier on the same rank
// (a recv writes). One pass per section suffices: repetitions run the same ops.
void check_reads(const Program& program, std::vector<Problem>& problems) {
  for (int r = 0; r < static_cast<int>(program.rank_programs.size()); ++r) {
    std::set<Buffer> written;
    for (const auto& section : program.rank_programs[r].sections) {
      for (int i = 0; i < static_cast<int>(section.ops.size()); ++i) {
        const Op& op = section.ops[i];
        std::vector<Buffer> reads{op.a, op.b, op.c};
        if (op.kind == OpKind::norm_sq || op.kind == OpKind::allreduce) reads.push_back(op.dst);
        for (const auto& buffer : reads) {
          if (!buffer.empty() && !written.contains(buffer)) {
            problems.push_back({r, section.name, i, "reads " + to_string(buffer) + " before it is written"});
          }
        }
        if (!op.dst.empty()) written.insert(op.dst);
      }
    }
  }
}

struct Cursor {
  int section = 0, repetition = 0, op = 0;
  double clock = 0;
  bool done = false;
};

struct Message {
  int tag;
  std::int64_t bytes;
  double clock;
};

// A message's bytes held by its sender from its send to its receiver's recv,
// on the dry run's clock.
struct Held {
  int sender;
  std::int64_t bytes;
  double sent, received;
};

const Op* current(const Program& program, int rank, Cursor& cursor) {
  const auto& sections = program.rank_programs[rank].sections;
  while (cursor.section < static_cast<int>(sections.size())) {
    const Section& section = sections[cursor.section];
    if (cursor.repetition < section.repeat && cursor.op < static_cast<int>(section.ops.size())) {
      return &section.ops[cursor.op];
    }
    if (cursor.repetition < section.repeat && !section.ops.empty()) {
      cursor.op = 0;
      ++cursor.repetition;
      continue;
    }
    cursor = {cursor.section + 1, 0, 0, cursor.clock, false};
  }
  cursor.done = true;
  return nullptr;
}

// The dry run. Returns the critical path in block steps; adds a problem per
// message mismatch and per rank left waiting; records each received
// message's lifetime in `held`.
double dry_run(const Program& program, std::vector<Problem>* problems, std::vector<Held>* held = nullptr,
               bool first_replica_only = false) {
  const int ranks = first_replica_only ? ranks_per_replica(program) : static_cast<int>(program.rank_programs.size());
  std::vector<Cursor> cursors(ranks);
  std::unordered_map<std::uint64_t, std::deque<Message>> channels;  // (from, to)
  const auto channel = [&](int from, int to) -> auto& {
    return channels[(std::uint64_t(from) << 32) | std::uint32_t(to)];
  };
  std::deque<int> runnable;
  for (int r = 0; r < ranks; ++r) runnable.push_back(r);
  std::vector<char> queued(ranks, 1);
  // Ranks waiting in a collective, by (kind, group): it resumes them once the
  // whole group has arrived.
  std::map<std::pair<OpKind, std::vector<int>>, std::vector<int>> arrived;
  std::map<std::pair<OpKind, std::vector<int>>, const Op*> opened;  // the first op to arrive
  std::vector<char> in_collective(ranks, 0);
  const auto report = [&](int rank, const std::string& why) {
    if (problems) {
      const auto& sections = program.rank_programs[rank].sections;
      const auto at = static_cast<std::size_t>(cursors[rank].section);
      problems->push_back({rank, at < sections.size() ? sections[at].name : "", cursors[rank].op, why});
    }
  };

  while (!runnable.empty()) {
    const int rank = runnable.front();
    runnable.pop_front();
    queued[rank] = 0;
    Cursor& cursor = cursors[rank];
    while (const Op* op = current(program, rank, cursor)) {
      if (op->kind == OpKind::send) {
        channel(rank, op->peer).push_back({op->tag, op->bytes, cursor.clock});
        if (!queued[op->peer] && !in_collective[op->peer]) {
          queued[op->peer] = 1;
          runnable.push_back(op->peer);
        }
      } else if (op->kind == OpKind::recv) {
        auto& queue = channel(op->peer, rank);
        if (queue.empty()) break;  // wait; the sender re-queues us
        const Message message = queue.front();
        queue.pop_front();
        if (message.tag != op->tag || message.bytes != op->bytes) {
          report(rank, "recv from rank " + std::to_string(op->peer) + " expects tag " +
                           std::to_string(op->tag) + " (" + std::to_string(op->bytes) +
                           " bytes) but the matching send has tag " + std::to_string(message.tag) +
                           " (" + std::to_string(message.bytes) + " bytes)");
        }
        cursor.clock = std::max(cursor.clock, message.clock);
        if (held) held->push_back({op->peer, message.bytes, message.clock, cursor.clock});
      } else if (first_replica_only && is_replica_collective(op->kind)) {
        // The other replicas meet it at the same clock.
      } else if (is_collective(op->kind)) {
        const std::vector<int> group = collective_group(program, rank, op->kind);
        auto& waiting = arrived[{op->kind, group}];
        // Members of a gradient or parameter collective must move the same blocks.
        const Op*& first = opened[{op->kind, group}];
        if (waiting.empty()) first = op;
        else if (is_replica_collective(op->kind) &&
                 (first->block != op->block || first->span != op->span || first->bytes != op->bytes))
          report(rank, std::string(to_string(op->kind)) + " of blocks " + std::to_string(op->block) + " + " +
                           std::to_string(op->span) + " (" + std::to_string(op->bytes) + " bytes) meets rank " +
                           std::to_string(waiting.front()) + "'s of blocks " + std::to_string(first->block) + " + " +
                           std::to_string(first->span) + " (" + std::to_string(first->bytes) + " bytes)");
        waiting.push_back(rank);
        in_collective[rank] = 1;
        ++cursor.op;
        if (waiting.size() == group.size()) {
          double clock = 0;
          for (int r : waiting) clock = std::max(clock, cursors[r].clock);
          for (int r : waiting) {
            cursors[r].clock = clock;
            in_collective[r] = 0;
            if (!queued[r]) {
              queued[r] = 1;
              runnable.push_back(r);
            }
          }
          arrived.erase({op->kind, group});
        }
        break;  // resumes once its whole group has arrived
      } else if (is_block_step(op->kind)) {
        cursor.clock += 1;
      }
      ++cursor.op;
    }
  }

  double critical_path = 0;
  std::vector<int> waiting_in_group(ranks, 0);  // > 0: waits in a collective that many of its group reached
  std::vector<int> group_size(ranks, 0);
  for (const auto& [key, waiting] : arrived)
    for (int r : waiting) {
      waiting_in_group[r] = static_cast<int>(waiting.size());
      group_size[r] = static_cast<int>(key.second.size());
    }
  for (int r = 0; r < ranks; ++r) {
    critical_path = std::max(critical_path, cursors[r].clock);
    if (waiting_in_group[r] > 0) {
      --cursors[r].op;  // point at the collective itself
      report(r, "waits forever in a collective (" + std::to_string(waiting_in_group[r]) + " of " +
                    std::to_string(group_size[r]) + " ranks of its group arrive)");
    } else if (const Op* op = current(program, r, cursors[r])) {
      report(r, "deadlock: waits forever in recv from rank " + std::to_string(op->peer) + " (tag " +
                    std::to_string(op->tag) + ")");
    }
  }
  for (const auto& [key, queue] : channels) {
    if (!queue.empty() && problems) {
      const int from = static_cast<int>(key >> 32), to = static_cast<int>(key & 0xffffffffu);
      problems->push_back({from, "", -1, std::to_string(queue.size()) + " message(s) to rank " +
                                             std::to_string(to) + " (tag " + std::to_string(queue.front().tag) +
                                             ") are never received"});
    }
  }
  return critical_path;
}

}  // namespace

std::vector<Problem> find_problems(const Program& program) {
  std::vector<Problem> problems;
  check_structure(program, problems);
  if (!problems.empty()) return problems;  // the rest assumes sane peers and counts
  check_reads(program, problems);
  dry_run(program, &problems);
  return problems;
}

void validate(const Program& program, const std::string& origin) {
  const auto problems = find_problems(program);
  if (problems.empty()) return;
  std::string why = problems.front().to_string();
  if (problems.size() > 1) why += " (and " + std::to_string(problems.size() - 1) + " more problems)";
  throw Error(origin.empty() ? "invalid program" : origin, why);
}

double critical_path_steps(const Program& program) { return dry_run(program, nullptr); }

std::vector<std::int64_t> peak_held_message_bytes(const Program& program, bool first_replica_only) {
  std::vector<Held> held;
  dry_run(program, nullptr, &held, first_replica_only);
  // Per sender: +bytes at the send, -bytes at the receipt; a message sent and
  // received at the same moment is still held then (arrivals first).
  std::vector<std::vector<std::pair<double, std::int64_t>>> events(program.rank_programs.size());
  for (const Held& message : held) {
    events[message.sender].push_back({message.sent, message.bytes});
    events[message.sender].push_back({message.received, -message.bytes});
  }
  std::vector<std::int64_t> peaks(events.size(), 0);
  for (std::size_t rank = 0; rank < events.size(); ++rank) {
    auto& timeline = events[rank];
    std::sort(timeline.begin(), timeline.end(), [](const auto& x, const auto& y) {
      return x.first != y.first ? x.first < y.first : x.second > y.second;
    });
    std::int64_t now = 0;
    for (const auto& [clock, change] : timeline) peaks[rank] = std::max(peaks[rank], now += change);
  }
  return peaks;
}

}  // namespace plait::schedule
