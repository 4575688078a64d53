// MGRIT on the reference backend: exactness, optimality, rank independence,
// and the adjoint against serial backprop and finite differences.
#include <gtest/gtest.h>

#include <cmath>

#include "plait/schedule/build.hpp"
#include "plait/schedule/reference.hpp"
#include "plait/schedule/validate.hpp"

namespace plait::schedule {
namespace {

BuildSpec spec_for(const std::string& problem, int layers, int levels, int cf, Relax relax, int iterations,
                   int ranks = 1) {
  BuildSpec spec;
  spec.layers = layers;
  spec.ranks = ranks;
  spec.forward = {.levels = levels, .coarsening_factor = cf, .relax = relax, .iterations = iterations};
  spec.adjoint = spec.forward;
  spec.model.kind = problem;
  spec.model.width = 4;
  return spec;
}

double max_difference(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double out = 0;
  for (std::size_t i = 0; i < a.size(); ++i) out = std::max(out, std::abs(a[i] - b[i]));
  return out;
}

double max_gradient_difference(const std::vector<std::vector<double>>& a,
                               const std::vector<std::vector<double>>& b) {
  EXPECT_EQ(a.size(), b.size());
  double out = 0;
  for (std::size_t i = 0; i < a.size(); ++i) out = std::max(out, max_difference(a[i], b[i]));
  return out;
}

TEST(Mgrit, SameResultsOnEveryRankCount) {
  const auto spec = spec_for("mlp", 64, 3, 2, Relax::FCF, 2);
  const ReferenceModel model(spec.model, spec.layers);
  auto one = spec;
  one.ranks = 1;
  const auto reference = run_reference(build_mgrit(one), model);
  // 7 ranks cut at the coarsest stride (16 intervals); 13 and 64 ranks spread
  // coarse intervals over several ranks.
  for (int ranks : {2, 3, 4, 7, 13, 64}) {
    auto many = spec;
    many.ranks = ranks;
    const auto run = run_reference(build_mgrit(many), model);
    EXPECT_LE(max_difference(run.final_state, reference.final_state), 1e-14) << ranks << " ranks";
    EXPECT_LE(max_gradient_difference(run.gradients, reference.gradients), 1e-14) << ranks << " ranks";
    ASSERT_EQ(run.result.forward_residual_norms.size(), reference.result.forward_residual_norms.size());
    for (std::size_t i = 0; i < run.result.forward_residual_norms.size(); ++i) {
      EXPECT_NEAR(run.result.forward_residual_norms[i], reference.result.forward_residual_norms[i], 1e-14);
    }
  }
}

// Two-level F-relaxation is parareal: after k corrections the first k coarse
// intervals are exact, so N/cf iterations solve exactly. XBraid's skip makes
// the first iteration a coarse predictor only, which costs one more.
TEST(Mgrit, TwoLevelFRelaxationIsExactAfterNOverCfIterations) {
  for (bool skip : {false, true}) {
    auto spec = spec_for("mlp", 24, 2, 4, Relax::F, 24 / 4 + (skip ? 1 : 0), 2);
    spec.forward.skip_first_down_relax = skip;
    spec.adjoint = spec.forward;
    const auto exact = solve_reference(build_mgrit(spec));
    EXPECT_LE(exact.max_abs_error_vs_serial, 1e-14) << "skip " << skip;
    EXPECT_LE(exact.max_abs_gradient_error_vs_serial, 1e-14) << "skip " << skip;
    spec.forward.iterations -= 1;
    const auto inexact = solve_reference(build_mgrit(spec));
    EXPECT_GT(inexact.max_abs_error_vs_serial, 1e-12) << "one iteration fewer must not be exact";
  }
}

int iterations_to(double tolerance, int layers, int levels) {
  auto spec = spec_for("linear", layers, levels, 4, Relax::FCF, 50);
  spec.tolerance = tolerance;
  const auto report = solve_reference(build_mgrit(spec));
  EXPECT_LT(report.residual_norms.back(), tolerance) << layers << " layers did not converge";
  return report.iterations;
}

TEST(Mgrit, IterationCountsIndependentOfDepth) {
  for (int levels : {2, 3}) {
    std::vector<int> counts;
    for (int layers : {64, 256, 1024, 4096}) counts.push_back(iterations_to(1e-8, layers, levels));
    const auto [low, high] = std::minmax_element(counts.begin(), counts.end());
    EXPECT_LE(*high - *low, 2) << "levels " << levels << ": " << counts.front() << " .. " << counts.back();
  }
}

TEST(Mgrit, MoreLevelsStillConvergeForDecayingProblems) {
  for (const char* scheme : {"forward-euler", "backward-euler"}) {
    for (double lambda : {-1.0, -10.0}) {
      for (int levels = 2; levels <= 6; ++levels) {
        auto spec = spec_for("linear", 1024, levels, 2, Relax::F, 60);
        spec.model.scheme = scheme;
        spec.model.lambda = lambda;
        spec.tolerance = 1e-9;
        const auto report = solve_reference(build_mgrit(spec));
        EXPECT_LT(report.residual_norms.back(), 1e-9) << scheme << " lambda " << lambda << " L " << levels;
        EXPECT_LT(report.max_abs_error_vs_serial, 1e-7) << scheme << " lambda " << lambda << " L " << levels;
      }
    }
  }
}

TEST(Mgrit, ResidualNormsFallEveryIteration) {
  const auto report = solve_reference(build_mgrit(spec_for("mlp", 128, 3, 4, Relax::FCF, 8, 3)));
  ASSERT_GE(report.residual_norms.size(), 5u);
  for (std::size_t i = 1; i < report.residual_norms.size(); ++i) {
    EXPECT_LT(report.residual_norms[i], report.residual_norms[i - 1]);
  }
}

// The converged MGRIT adjoint equals serial backprop; serial backprop equals
// central finite differences of the loss.
TEST(Mgrit, AdjointGradientMatchesSerialAndFiniteDifferences) {
  auto spec = spec_for("mlp", 32, 3, 2, Relax::FCF, 40, 3);
  spec.tolerance = 1e-13;
  ReferenceModel model(spec.model, spec.layers);
  const auto run = run_reference(build_mgrit(spec), model);
  const auto serial = solve_serial(model);
  EXPECT_LE(max_difference(run.final_state, serial.final_state), 1e-12);
  EXPECT_LE(max_gradient_difference(run.gradients, serial.gradients), 1e-12);
  EXPECT_NEAR(run.loss, serial.loss, 1e-12);

  const double epsilon = 1e-6;
  for (int block : {0, 13, 31}) {
    for (std::size_t i : {std::size_t{0}, std::size_t{5}, std::size_t{17}}) {
      auto& parameter = model.parameters(block)[i];
      const double saved = parameter;
      parameter = saved + epsilon;
      const double plus = solve_serial(model).loss;
      parameter = saved - epsilon;
      const double minus = solve_serial(model).loss;
      parameter = saved;
      EXPECT_NEAR(serial.gradients[block][i], (plus - minus) / (2 * epsilon), 1e-8)
          << "block " << block << " parameter " << i;
    }
  }
}

TEST(Mgrit, TrainingSettingsAreInexactButClose) {
  auto spec = spec_for("mlp", 64, 2, 4, Relax::F, 2, 2);
  spec.adjoint.iterations = 1;
  const auto report = solve_reference(build_mgrit(spec));
  EXPECT_GT(report.max_abs_error_vs_serial, 1e-10);
  EXPECT_LT(report.max_abs_error_vs_serial, 0.1);
  EXPECT_EQ(report.iterations, 2);
}

TEST(Mgrit, SerialProgramMatchesSerialSolutionOnManyRanks) {
  for (int ranks : {1, 4}) {
    auto spec = spec_for("mlp", 20, 1, 2, Relax::F, 1, ranks);
    const auto report = solve_reference(build_serial(spec));
    EXPECT_LE(report.max_abs_error_vs_serial, 1e-15);
    EXPECT_LE(report.max_abs_gradient_error_vs_serial, 1e-15);
  }
}

TEST(Mgrit, SerialForwardWithMgritAdjoint) {
  auto spec = spec_for("mlp", 48, 1, 2, Relax::F, 1, 3);
  spec.adjoint = {.levels = 2, .coarsening_factor = 4, .relax = Relax::FCF, .iterations = 30};
  spec.tolerance = 1e-13;
  const auto report = solve_reference(build_mgrit(spec));
  EXPECT_LE(report.max_abs_error_vs_serial, 1e-15);  // the forward sweep is exact
  EXPECT_LE(report.max_abs_gradient_error_vs_serial, 1e-12);
  EXPECT_TRUE(report.residual_norms.empty());
  EXPECT_FALSE(report.adjoint_residual_norms.empty());
}

}  // namespace
}  // namespace plait::schedule

namespace plait::schedule {
namespace {

// Many random settings: every built Program validates, and iterated to a
// tight tolerance it reproduces the serial forward result and gradients.
TEST(Mgrit, RandomSettingsValidateAndConvergeToSerial) {
  std::uint64_t seed = 12345;
  const auto next = [&](int bound) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<int>((seed >> 33) % static_cast<std::uint64_t>(bound));
  };
  for (int trial = 0; trial < 40; ++trial) {
    BuildSpec spec;
    spec.layers = 2 + next(60);
    spec.ranks = 1 + next(std::min(spec.layers, 9));
    spec.forward = {.levels = 1 + next(4), .coarsening_factor = 2 + next(3),
                    .relax = next(2) ? Relax::F : Relax::FCF, .iterations = 60,
                    .skip_first_down_relax = next(2) == 0};
    spec.adjoint = {.levels = 1 + next(4), .coarsening_factor = 2 + next(3),
                    .relax = next(2) ? Relax::F : Relax::FCF, .iterations = 60,
                    .skip_first_down_relax = next(2) == 0};
    spec.tolerance = 1e-13;
    spec.model.kind = "mlp";
    spec.model.width = 3;
    const std::string where = "trial " + std::to_string(trial) + ": N=" + std::to_string(spec.layers) +
                              " P=" + std::to_string(spec.ranks) + " fwd L=" + std::to_string(spec.forward.levels) +
                              " cf=" + std::to_string(spec.forward.coarsening_factor) +
                              " adj L=" + std::to_string(spec.adjoint.levels) +
                              " cf=" + std::to_string(spec.adjoint.coarsening_factor);
    const Program program = build_mgrit(spec);
    ASSERT_TRUE(find_problems(program).empty()) << where << ": " << find_problems(program).front().to_string();
    const auto report = solve_reference(program);
    EXPECT_LT(report.max_abs_error_vs_serial, 1e-11) << where;
    EXPECT_LT(report.max_abs_gradient_error_vs_serial, 1e-11) << where;
  }
}

}  // namespace
}  // namespace plait::schedule
