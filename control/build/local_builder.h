// LocalBuilder: bundles as content-addressed directories under <data_dir>/bundles, checked with
// the language's own tools (py_compile, node --check, php -l), with the dependencies a function's
// manifest lists (requirements.txt, package.json, composer.json) installed into the bundle.
#pragma once

#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "control/build/builder.h"

namespace eofaas::control {

/// Thread-safe. Builds of one bundle (identical inputs of different functions) run one at a time,
/// since they write into the same directory; builds of different bundles run concurrently.
class LocalBuilder final : public Builder {
 public:
  /// `bundles_dir` is created when missing. `check_timeout` bounds each command a build runs (the
  /// check, the dependency install). Build commands carry the bundles directory in their
  /// environment: what a previous builder of the same directory left running (it was killed
  /// during a build) is killed here, and gone before the constructor returns (unless it outlives
  /// SIGKILL for 10 s: that is logged). So one builder per bundles directory at a time; builders
  /// of other directories are left alone.
  LocalBuilder(std::string bundles_dir, absl::Duration check_timeout);

  absl::StatusOr<Bundle> Render(const eofaas::v1::Function& function, const Template& tmpl,
                                const BuildLogSink& log) override;
  /// The language's own check of the bundle; `function` plays no part, since identical bundles of
  /// different functions share one check.
  absl::Status Build(const eofaas::v1::Function& function, const Bundle& bundle,
                     const Template& tmpl, const BuildLogSink& log,
                     const std::atomic<bool>& cancel) override;
  std::string BundleDir(const std::string& artifact) const override;
  void CollectGarbage(const std::set<std::string>& live) override;

 private:
  absl::Status BuildAlone(const Bundle& bundle, const Template& tmpl, const BuildLogSink& log,
                          const std::atomic<bool>& cancel);
  absl::Status InstallDependencies(const Bundle& bundle, const Template& tmpl,
                                   const BuildLogSink& log, const std::atomic<bool>& cancel);
  /// Runs one build command from the bundle root; FAILED_PRECONDITION naming `step` with the
  /// command's last lines when it fails.
  absl::Status RunStep(absl::string_view step, std::vector<std::string> argv, const Bundle& bundle,
                       const BuildLogSink& log, const std::atomic<bool>& cancel);

  const std::string bundles_dir_;
  const absl::Duration check_timeout_;
  /// The environment entry that marks every process of this builder's build commands.
  const std::string step_marker_;
  std::mutex mu_;
  std::condition_variable building_done_;
  /// Artifacts whose build is running.
  std::set<std::string> building_;
};

}  // namespace eofaas::control
