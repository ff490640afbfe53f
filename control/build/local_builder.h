// LocalBuilder: bundles as content-addressed directories under <data_dir>/bundles, checked with
// the language's own tools (py_compile, node --check, php -l).
#pragma once

#include <string>

#include "absl/time/time.h"
#include "control/build/builder.h"

namespace eofaas::control {

class LocalBuilder final : public Builder {
 public:
  /// `bundles_dir` is created when missing.
  LocalBuilder(std::string bundles_dir, absl::Duration check_timeout);

  absl::StatusOr<Bundle> Render(const eofaas::v1::Function& function, const Template& tmpl,
                                const BuildLogSink& log) override;
  absl::Status Build(const Bundle& bundle, const Template& tmpl, const BuildLogSink& log,
                     const std::atomic<bool>& cancel) override;
  std::string BundleDir(const std::string& artifact) const override;
  void CollectGarbage(const std::set<std::string>& live) override;

 private:
  const std::string bundles_dir_;
  const absl::Duration check_timeout_;
};

}  // namespace eofaas::control
