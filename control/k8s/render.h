// Kubernetes objects of a function generation, rendered as yaml-cpp nodes: the build (a Job, and
// the ConfigMap that carries its context), the registry pull Secret, and the workload (Deployment,
// Service, and a HorizontalPodAutoscaler when it scales). Pure functions of their arguments: the
// same inputs always give byte-identical YAML (ToYaml), so a deployer can apply them with
// server-side apply and the tests can compare them with golden files. Nothing here talks to a
// cluster.
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "yaml-cpp/yaml.h"

namespace eofaas::control::k8s {

/// One function generation: what every object rendered for it is named, labelled and annotated
/// after.
struct FunctionGeneration {
  /// The namespace functions run in (the control plane's, e.g. "eofaas-functions").
  std::string namespace_name;
  /// The user's function name (an RFC 1123 label, common::ValidateFunctionName).
  std::string function;
  std::string uid;
  int64_t generation = 0;
  /// common::DeploymentName(function, uid, generation): the Deployment, Service and HPA are
  /// named so; the build Job and its ConfigMap get RoleName(deployment_name, "build").
  std::string deployment_name;
  /// The template's name, as label eofaas.io/template (sanitised).
  std::string template_name;
};

/// Requests and limits of one container, as Kubernetes quantities ("250m", "512Mi"); an empty
/// string leaves that entry out.
struct Resources {
  std::string cpu_request;
  std::string memory_request;
  std::string cpu_limit;
  std::string memory_limit;
};

/// The registry images are pushed to and pulled from.
struct RegistryConfig {
  /// host[:port], the key of the pull secret's `auths` ("registry.example.com:5000").
  std::string server;
  /// Path under the server: images are <server>/<repository>/<function>:<tag>. May be empty.
  std::string repository = "eofaas";
  /// The kubernetes.io/dockerconfigjson Secret in the functions namespace: kubelet pulls with it
  /// (imagePullSecrets) and build Jobs push with it (mounted as the builder's Docker config).
  std::string secret_name = "eofaas-registry";
  /// The registry speaks plain HTTP or has a certificate nobody signed (test registries only).
  bool insecure = false;
};

/// What logs in to the registry. The control plane's logging (absl::StrCat) does not take it at
/// all, and a stream (a test's failure message) gets the username only.
struct RegistryCredentials {
  std::string username;
  std::string password;

  friend std::ostream& operator<<(std::ostream& out, const RegistryCredentials& credentials) {
    return out << "{username: " << credentials.username << ", password: <redacted>}";
  }
};

/// The image reference a function's bundle is built into: <server>/<repository>/<function>:<tag>,
/// the tag derived from the bundle's content address ("sha256:<hex>" → "sha256-<hex>"), so
/// identical bundles share one image.
std::string ImageReference(const RegistryConfig& registry, absl::string_view function,
                           absl::string_view artifact);

/// The kubernetes.io/dockerconfigjson Secret named `registry.secret_name` in `namespace_name`:
/// `.dockerconfigjson` holds {"auths": {<server>: {username, password, auth}}}. The node holds
/// the credentials: never log it nor return it to a caller. INVALID_ARGUMENT naming the field
/// (never its value) when the server, username or password is empty.
absl::StatusOr<YAML::Node> RenderRegistrySecret(absl::string_view namespace_name,
                                                const RegistryConfig& registry,
                                                const RegistryCredentials& credentials);

/// How a function generation runs.
struct WorkloadSpec {
  /// Where its image is (ImageReference, or the same with @sha256:<digest>).
  std::string image;
  /// The template's run command, given as the container's args so the image's entrypoint (if
  /// any) still runs first; relative paths are relative to /app, the bundle in every image.
  std::vector<std::string> run;
  /// The user's environment variables (names validated, none starting with EOFAAS_).
  std::map<std::string, std::string> env;
  /// Concurrent invocations each replica accepts (EOFAAS_CONCURRENCY).
  int concurrency = 1;
  /// Replica bounds: max(min_replicas, 1) replicas run. When max_replicas is larger, an
  /// autoscaling/v2 HPA scales between them on CPU and the Deployment leaves spec.replicas to
  /// it. An HPA cannot scale to zero.
  int min_replicas = 1;
  int max_replicas = 1;
  /// The HPA's target: average CPU use as a percentage of the CPU request.
  int target_cpu_utilization = 80;
  Resources resources = {.cpu_request = "100m", .memory_request = "128Mi", .memory_limit = "512Mi"};
  /// Size of the writable /tmp (the root filesystem is read-only).
  std::string tmp_size_limit = "256Mi";
  /// How long a replica may finish its invocations after SIGTERM (EOFAAS_DRAIN_TIMEOUT_MS); the
  /// pod's grace period is a few seconds longer.
  absl::Duration drain_timeout = absl::Seconds(10);
  /// How long replicas may take to answer /healthz (startup probe, Deployment progress deadline).
  absl::Duration progress_deadline = absl::Minutes(1);
};

/// The workload of one generation, in apply order: the Deployment, its ClusterIP Service and,
/// when it autoscales, its HorizontalPodAutoscaler (all named `deployment_name`). A deployer that
/// gets no HPA deletes one left from an earlier scaling of the same deployment.
/// INVALID_ARGUMENT naming the field for an inconsistent spec.
absl::StatusOr<std::vector<YAML::Node>> RenderWorkload(const FunctionGeneration& generation,
                                                       const WorkloadSpec& spec,
                                                       const RegistryConfig& registry);

/// The tool that builds images in the cluster, without a privileged Docker daemon.
enum class BuildTool {
  /// BuildKit, rootless and daemonless (buildctl-daemonless.sh): the default.
  kBuildKit,
  /// The Kaniko executor. Its upstream project was archived in 2025 and gets no more fixes; kept
  /// for clusters that already trust its image.
  kKaniko,
};

inline constexpr absl::string_view kDefaultBuildKitImage = "moby/buildkit:v0.23.2-rootless";
inline constexpr absl::string_view kDefaultKanikoImage = "gcr.io/kaniko-project/executor:v1.24.0";

/// The most a ConfigMap holds: its keys and (decoded) values together, as the API server counts.
inline constexpr size_t kMaxConfigMapBytes = 1024 * 1024;

/// How one generation's image is built.
struct BuildSpec {
  BuildTool tool = BuildTool::kBuildKit;
  /// The builder's image; empty: kDefaultBuildKitImage or kDefaultKanikoImage.
  std::string builder_image;
  /// Where the image is pushed (ImageReference).
  std::string image;
  /// The build context, a gzipped tar with the template's Dockerfile at its root
  /// (ArchiveBuildContext), carried to the Job in a ConfigMap. Empty when `context_url` is set.
  std::string context_archive;
  /// Or an https:// URL the builder downloads the same archive from (an object store's presigned
  /// URL), for contexts larger than a ConfigMap holds.
  std::string context_url;
  /// The Job fails when the build runs longer (activeDeadlineSeconds).
  absl::Duration deadline = absl::Minutes(15);
  /// Pods retried after a failed one (a compile error fails every time, a registry hiccup not).
  int backoff_limit = 1;
  Resources resources = {.cpu_request = "500m", .memory_request = "1Gi", .memory_limit = "4Gi"};
};

/// The build of one generation, in apply order: the ConfigMap holding the context (unless
/// `context_url` is set), then the Job. Both are named RoleName(deployment_name, "build"). The
/// Job's pod runs once (restartPolicy Never), pushes with the pull secret's credentials and
/// writes the pushed image's digest to its termination message. Errors: INVALID_ARGUMENT naming
/// the field for an inconsistent spec; FAILED_PRECONDITION when the context is larger than a
/// ConfigMap holds (the message gives both sizes and the way out).
absl::StatusOr<std::vector<YAML::Node>> RenderBuild(const FunctionGeneration& generation,
                                                    const BuildSpec& spec,
                                                    const RegistryConfig& registry);

/// The build context of a rendered bundle: every file under `bundle_dir` (which holds the
/// template's Dockerfile at its root) except __pycache__ directories, as a gzipped ustar archive
/// with sorted entries, owner root, modes 0644/0755 and time 0, so the same bundle always gives
/// the same bytes. FAILED_PRECONDITION when the Dockerfile is missing or a file cannot be read;
/// INVALID_ARGUMENT for a path a ustar header cannot hold (over 255 bytes).
absl::StatusOr<std::string> ArchiveBuildContext(const std::string& bundle_dir);

/// A YAML stream of `documents`, each started by "---": the same nodes always give the same
/// bytes. Strings that would read back as another type ("8080", "true", "") are quoted.
std::string ToYaml(const std::vector<YAML::Node>& documents);

}  // namespace eofaas::control::k8s
