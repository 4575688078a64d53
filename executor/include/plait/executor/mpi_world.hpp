// MPI ranks as a World (target plait::executor_mpi). No mpi.h here.
#pragma once

#include <memory>

#include "plait/executor/world.hpp"

namespace plait::executor {

// Initialises MPI for this process (unless it already is) and finalises it
// when destroyed, if it was the one that initialised it.
class MpiSession {
 public:
  MpiSession(int& argc, char**& argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

 private:
  bool owns_ = false;
};

// How sample_clock_offset() finds each rank's clock against rank 0's.
enum class ClockSync {
  // Ranks on rank 0's node share its clock (offset exactly 0); ranks on other
  // nodes are measured by round trips.
  on_one_node_shared,
  // Every rank is measured, even on rank 0's node (tests of the measurement).
  measure_every_rank,
};

// MPI_COMM_WORLD. Needs an MpiSession alive.
std::unique_ptr<World> make_mpi_world(ClockSync clock_sync = ClockSync::on_one_node_shared);

// Collective over MPI_COMM_WORLD: the ranks passing member = true form a new
// World (ranked in world order); the others get nullptr. For tests that run
// a smaller Program next to a larger one in one mpirun.
std::unique_ptr<World> make_mpi_subworld(bool member);

// This process's rank in MPI_COMM_WORLD, read from the launcher's environment
// before MPI is initialised (OMPI_COMM_WORLD_RANK, PMI_RANK); 0 if none.
int launcher_rank();

}  // namespace plait::executor
