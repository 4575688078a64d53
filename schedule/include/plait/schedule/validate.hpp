// Checks a Program: message matching, read-before-write and a dry run of the
// message order (deadlock). All problems are collected; each names rank,
// section, op index and reason.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plait/schedule/program.hpp"

namespace plait::schedule {

struct Problem {
  int rank = -1;
  std::string section;
  int op = -1;
  std::string reason;
  std::string to_string() const;
};

std::vector<Problem> find_problems(const Program& program);

// Throws plait::Error with the first problem (and the count of the others).
void validate(const Program& program, const std::string& origin = "");

// Dry run with unit cost per block step (forward or adjoint) and zero for all
// else: the critical path length in block steps. Assumes a valid program.
double critical_path_steps(const Program& program);

// Per rank, the most bytes it has sent that their receivers have not yet
// taken, on the same dry run's clock: a send's buffer is held from the send
// until the matching recv (sends never block). A pipeline stage that runs
// ahead of its neighbour holds a few activations, not every message of the step.
// first_replica_only: the dry run of replica 0's ranks alone (only their
// entries), its collectives over the replicas taken as met at once: what a
// Program whose replicas run the same ops in lockstep (every builder's) gives
// for every replica, at a fraction of the cost.
std::vector<std::int64_t> peak_held_message_bytes(const Program& program, bool first_replica_only = false);

}  // namespace plait::schedule
