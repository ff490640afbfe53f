// Where the Kubernetes API server is and who the control plane is to it: the pod's own service
// account when it runs in a cluster, or a kubeconfig file when it runs outside one.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace eofaas::control::k8s {

/// How to reach and authenticate to one API server. It holds credentials: never log it.
struct KubeConfig {
  /// "https://host[:port][/prefix]"; the port is 443 when absent.
  std::string server;
  /// PEM certificates the server's certificate must chain to; empty: the system's trusted roots.
  std::string certificate_authority_pem;
  /// Accept any server certificate (throwaway test clusters only).
  bool insecure_skip_tls_verify = false;
  /// A bearer token, or the file holding one. The client reads the file again periodically, so a
  /// rotated (projected service-account) token is picked up. At most one of the two is set.
  std::string token;
  std::string token_file;
  /// A client certificate (PEM) and its private key (PEM): both or neither.
  std::string client_certificate_pem;
  std::string client_key_pem;
  /// The namespace of the service account or of the kubeconfig context; empty when unset.
  std::string namespace_name;
};

/// Where the kubelet mounts a pod's service-account credentials.
inline constexpr absl::string_view kServiceAccountDir =
    "/var/run/secrets/kubernetes.io/serviceaccount";

/// The pod's own service account: the server from $KUBERNETES_SERVICE_HOST and
/// $KUBERNETES_SERVICE_PORT, the CA from `<dir>/ca.crt`, the token file `<dir>/token` (read by
/// the client, which follows its rotation) and the namespace from `<dir>/namespace`.
/// FAILED_PRECONDITION naming what is missing when this process does not run in a pod.
absl::StatusOr<KubeConfig> LoadInClusterConfig(
    absl::string_view service_account_dir = kServiceAccountDir);

/// A kubeconfig file: the cluster, user and namespace of `context`, or of `current-context` when
/// `context` is empty. Relative file paths in it are relative to the file's directory, as kubectl
/// reads them. Users authenticate with `token`, `tokenFile`, or a client certificate
/// (`client-certificate[-data]` and `client-key[-data]`). Errors: NOT_FOUND when a file cannot
/// be read; INVALID_ARGUMENT naming the key for malformed or missing entries and for what is not
/// supported (exec plugins, auth providers, basic authentication).
absl::StatusOr<KubeConfig> LoadKubeconfig(const std::string& path, absl::string_view context = "");

}  // namespace eofaas::control::k8s
