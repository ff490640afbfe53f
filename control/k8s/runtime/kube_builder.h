// KubeBuilder: the Builder of the Kubernetes runtime. It renders bundles the way LocalBuilder does
// (the template's Dockerfile at the bundle's root), then builds each bundle into an image inside
// the cluster: a Job (BuildKit or Kaniko, no privileged Docker daemon) that takes the bundle as a
// build context from a ConfigMap and pushes the image to the registry.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "control/build/builder.h"
#include "control/build/local_builder.h"
#include "control/k8s/client/kube_client.h"
#include "control/k8s/render.h"
#include "yaml-cpp/yaml.h"

namespace eofaas::control::k8s {

struct KubeBuilderOptions {
  /// Where build Jobs, their ConfigMaps and the registry pull Secret live: the functions'
  /// namespace.
  std::string namespace_name;
  /// Where images are pushed.
  RegistryConfig registry;
  /// When set, the pull Secret `registry.secret_name` is applied with them before the first
  /// build; when not, that Secret must exist already (the build Job pushes with it).
  std::optional<RegistryCredentials> credentials;
  BuildTool tool = BuildTool::kBuildKit;
  /// Empty: the tool's default image (render.h).
  std::string builder_image;
  /// The Job fails once its build ran longer (activeDeadlineSeconds).
  absl::Duration deadline = absl::Minutes(15);
  /// Pods retried after a failed one.
  int backoff_limit = 1;
  /// How often the Job's status is read while it runs.
  absl::Duration poll_interval = absl::Seconds(2);
};

/// Thread-safe: builds of different functions run concurrently, each blocking its caller's thread
/// while its Job runs.
///
/// Build applies a ConfigMap holding the bundle as a build context and a Job that builds and
/// pushes ImageReference(registry, function, artifact), both named after the generation
/// (RoleName(deployment name, "build")), then reads the Job's status every `poll_interval` until
/// it completed or failed. The Job's pod log goes to the build log. Either way, and when
/// cancelled, the ConfigMap and the Job (with its pods) are deleted afterwards: the Job has no
/// ttlSecondsAfterFinished, and its log is kept in the build log.
///
/// An image this builder built is remembered in memory only: the same reference is not built
/// again while the process runs, and is built once more after a restart (the same bytes, pushed
/// again).
///
/// The registry credentials never appear in a log line nor in a returned status.
class KubeBuilder final : public Builder {
 public:
  /// `client` must outlive the builder; bundles are rendered under `bundles_dir` (created when
  /// missing). INVALID_ARGUMENT naming the option for unusable options or credentials.
  static absl::StatusOr<std::unique_ptr<KubeBuilder>> Create(KubeClient& client,
                                                             std::string bundles_dir,
                                                             KubeBuilderOptions options);

  /// LocalBuilder's render.
  absl::StatusOr<Bundle> Render(const eofaas::v1::Function& function, const Template& tmpl,
                                const BuildLogSink& log) override;
  /// Builds and pushes the image of `bundle` with a Job named after `function`'s generation.
  /// FAILED_PRECONDITION when the context is larger than a ConfigMap holds (nothing applied), or
  /// when the Job failed: the message holds the Job's reason and message and the last lines of
  /// its pod's log. CANCELLED within a fraction of a second of `cancel` becoming true.
  /// DEADLINE_EXCEEDED when the Job did not finish in the deadline and a minute more. Errors of
  /// the API server as KubeClient reports them.
  absl::Status Build(const eofaas::v1::Function& function, const Bundle& bundle,
                     const Template& tmpl, const BuildLogSink& log,
                     const std::atomic<bool>& cancel) override;
  std::string BundleDir(const std::string& artifact) const override;
  void CollectGarbage(const std::set<std::string>& live) override;

 private:
  KubeBuilder(KubeClient& client, std::string bundles_dir, KubeBuilderOptions options,
              std::optional<YAML::Node> registry_secret);

  /// Applies the pull Secret unless it was applied before (or there is none to apply).
  absl::Status EnsureRegistrySecret(const BuildLogSink& log);

  KubeClient& client_;
  /// Renders bundles; its check never runs here.
  LocalBuilder local_;
  const KubeBuilderOptions options_;
  /// The rendered pull Secret (it holds the credentials), when credentials are configured.
  const std::optional<YAML::Node> registry_secret_;

  std::mutex mu_;
  bool secret_applied_ = false;
  /// References of the images built and pushed.
  std::set<std::string> built_;
};

}  // namespace eofaas::control::k8s
