// Writes the small Programs the plait-exec command-line tests run:
//   mgrit_p<P>.json  (P = 1, 2, 3; 12 layers, converged settings)
#include <cstdio>
#include <exception>
#include <string>

#include "plait/schedule/build.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: executor_write_programs DIR\n");
    return 2;
  }
  try {
    for (int ranks = 1; ranks <= 3; ++ranks) {
      plait::schedule::BuildSpec spec;
      spec.layers = 12;
      spec.ranks = ranks;
      spec.forward = {.levels = 2, .coarsening_factor = 2, .relax = plait::schedule::Relax::F, .iterations = 7};
      spec.adjoint = {.levels = 2, .coarsening_factor = 2, .relax = plait::schedule::Relax::F, .iterations = 7};
      spec.model.d_model = 32;
      spec.model.heads = 4;
      spec.model.seq = 8;
      spec.model.batch = 2;
      spec.model.mlp_ratio = 2;
      plait::schedule::save_program(plait::schedule::build_mgrit(spec),
                                    std::string(argv[1]) + "/mgrit_p" + std::to_string(ranks) + ".json");
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "executor_write_programs: %s\n", error.what());
    return 1;
  }
  return 0;
}
