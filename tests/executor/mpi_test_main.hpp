// The main of an MPI test binary: the world its tests use, one rank reporting;
// every rank's result counts in the exit code.
#pragma once

#include <gtest/gtest.h>

#include "plait/executor/mpi_world.hpp"

namespace plait::executor::testing {

inline int run_mpi_tests(int argc, char** argv, World*& world) {
  MpiSession session(argc, argv);
  auto made = make_mpi_world();
  world = made.get();
  ::testing::InitGoogleTest(&argc, argv);
  if (made->rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int failed = RUN_ALL_TESTS();
  const bool all_passed = made->all_ok(failed == 0);
  made.reset();
  return all_passed ? 0 : 1;
}

}  // namespace plait::executor::testing
