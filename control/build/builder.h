// The Builder interface: turns a function generation's sources into a runnable artifact.
// Implementations: LocalBuilder (content-addressed bundle directories) and KubeBuilder (images
// built by Jobs in a cluster, control/k8s/runtime/).
#pragma once

#include <atomic>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "control/build/template_catalog.h"
#include "eofaas/v1/function.pb.h"

namespace eofaas::control {

/// A rendered bundle: the template's runtime plus the user's files.
struct Bundle {
  /// Content address, "sha256:<hex>": the same inputs always give the same artifact.
  std::string artifact;
  std::string dir;
};

/// Receives build log lines as they are produced.
using BuildLogSink = std::function<void(std::vector<std::string> lines)>;

/// Thread-safe: builds of different functions run concurrently.
class Builder {
 public:
  virtual ~Builder() = default;

  /// RENDERING: wraps `function`'s files in `tmpl`. Reuses an identical bundle when one exists.
  virtual absl::StatusOr<Bundle> Render(const eofaas::v1::Function& function, const Template& tmpl,
                                        const BuildLogSink& log) = 0;

  /// BUILDING: turns `bundle`, rendered from `function` (its status names the generation being
  /// built), into the artifact the deployer runs; an artifact built before is not built again.
  /// FAILED_PRECONDITION with the build's last lines when the sources are rejected; CANCELLED
  /// when `cancel` became true.
  virtual absl::Status Build(const eofaas::v1::Function& function, const Bundle& bundle,
                             const Template& tmpl, const BuildLogSink& log,
                             const std::atomic<bool>& cancel) = 0;

  /// The directory of an artifact built earlier.
  virtual std::string BundleDir(const std::string& artifact) const = 0;

  /// Removes every bundle whose artifact is not in `live`.
  virtual void CollectGarbage(const std::set<std::string>& live) = 0;
};

}  // namespace eofaas::control
