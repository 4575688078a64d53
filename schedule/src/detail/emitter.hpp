// Writes a Program's ops rank by rank for the MGRIT and serial builders.
//
// The emitter writes every rank's ops in one global order that is itself a
// valid sequential execution (each recv after its send), so the Program cannot
// deadlock.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "plait/schedule/memory.hpp"
#include "plait/schedule/program.hpp"

namespace plait::schedule::detail {

class Emitter {
 public:
  explicit Emitter(Program& program) : program_(program), bytes_(state_bytes(program.model)) {
    program_.rank_programs.assign(program.ranks, {});
  }

  void begin_section(const std::string& name, Phase phase, bool iteration, int repeat) {
    for (auto& rank : program_.rank_programs) {
      rank.sections.push_back({name, phase, iteration, repeat, {}});
    }
    ghosts_.clear();  // a repeated body must fetch what it reads from others each time
  }

  // Drops the section just begun when nothing was emitted into it.
  void end_empty_section() {
    for (auto& rank : program_.rank_programs) {
      if (!rank.sections.back().ops.empty()) return;
    }
    for (auto& rank : program_.rank_programs) rank.sections.pop_back();
  }

  void emit(int rank, const Op& op) {
    program_.rank_programs[rank].sections.back().ops.push_back(op);
    if (op.dst.empty() || op.dst.space == Space::tmp || op.dst.space == Space::reg) return;
    auto& record = written_[key(op.dst)];
    record.version += 1;
    record.rank = rank;  // each named buffer has one writer
  }

  // Makes `buffer` readable on `rank`: a message from its writer unless the
  // rank already holds the current version (a ghost copy).
  void fetch(int rank, const Buffer& buffer) {
    if (buffer.empty() || buffer.space == Space::tmp || buffer.space == Space::reg) return;
    const auto found = written_.find(key(buffer));
    if (found == written_.end()) throw std::logic_error("builder reads unwritten " + to_string(buffer));
    const auto [version, owner] = found->second;
    if (rank == owner) return;
    auto [ghost, inserted] = ghosts_.try_emplace(key(buffer, rank), -1);
    if (!inserted && ghost->second == version) return;
    ghost->second = version;
    const int tag = static_cast<int>(buffer.space) * 64 + buffer.level;
    program_.rank_programs[owner].sections.back().ops.push_back(
        {.kind = OpKind::send, .a = buffer, .peer = rank, .tag = tag, .bytes = bytes_});
    program_.rank_programs[rank].sections.back().ops.push_back(
        {.kind = OpKind::recv, .dst = buffer, .peer = owner, .tag = tag, .bytes = bytes_});
  }

  void fetch_inputs(int rank, const Op& op) {
    for (const Buffer* input : {&op.a, &op.b, &op.c}) fetch(rank, *input);
  }

 private:
  struct Written {
    int version = 0;
    int rank = -1;
  };
  static std::uint64_t key(const Buffer& b, int rank = -1) {
    return (std::uint64_t(rank + 1) << 40) | (std::uint64_t(b.space) << 36) |
           (std::uint64_t(b.level) << 30) | std::uint64_t(b.point);
  }

  Program& program_;
  std::int64_t bytes_;
  std::unordered_map<std::uint64_t, Written> written_;
  std::unordered_map<std::uint64_t, int> ghosts_;
};

}  // namespace plait::schedule::detail
