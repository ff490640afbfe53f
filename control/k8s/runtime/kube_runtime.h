// The Kubernetes runtime as eofaas-control starts it (`--runtime=kubernetes`): the API client,
// configured from a kubeconfig or the pod's service account, and the KubeBuilder and KubeDeployer
// that use it, made from the control plane's flags.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "control/k8s/client/kube_client.h"
#include "control/k8s/render.h"
#include "control/k8s/runtime/kube_builder.h"
#include "control/k8s/runtime/kube_deployer.h"

namespace eofaas::control::k8s {

struct KubeRuntimeOptions {
  /// A kubeconfig file; empty: the pod's own service account (the control plane runs in the
  /// cluster).
  std::string kubeconfig;
  /// Where functions and their builds run.
  std::string namespace_name = "eofaas-functions";
  RegistryConfig registry;
  /// A directory holding the files `username` and `password` (the mounted Secret
  /// eofaas-registry-credentials): the pull Secret is written from them. Empty: the pull Secret
  /// `registry.secret_name` is managed by someone else and must exist.
  std::string registry_credentials_dir;
  /// "buildkit" or "kaniko".
  std::string image_builder = "buildkit";
  /// Empty: the tool's default image.
  std::string builder_image;
  /// Where bundles (the build contexts) are rendered on this machine.
  std::string bundles_dir;
  /// The longest a build Job may run.
  absl::Duration build_timeout = absl::Minutes(15);
  /// How long a stopping replica may finish its invocations.
  absl::Duration drain_timeout = absl::Seconds(10);
  /// How long a rollout may take (the Deployments' progressDeadlineSeconds).
  absl::Duration progress_deadline = absl::Minutes(1);
  /// True: an HPA scales functions between min_replicas ≥ 1 and a larger max_replicas on CPU.
  /// False: the control plane's autoscaler sets the Deployments' replicas.
  bool hpa = false;
};

/// The client outlives the builder and deployer that hold references to it.
struct KubeRuntime {
  std::unique_ptr<KubeClient> client;
  std::unique_ptr<KubeBuilder> builder;
  std::unique_ptr<KubeDeployer> deployer;
};

/// Reads the configuration and the registry credentials and makes the three parts; nothing is
/// sent to the cluster yet (the deployer's Start is the first request). INVALID_ARGUMENT naming
/// the option for a bad value; NOT_FOUND or FAILED_PRECONDITION for a kubeconfig, service
/// account or credentials file that cannot be read. The credentials are never part of a message.
absl::StatusOr<KubeRuntime> MakeKubeRuntime(const KubeRuntimeOptions& options);

}  // namespace eofaas::control::k8s
