// The build of a function generation in the cluster: a Job that turns the build context into an
// image and pushes it, without a privileged Docker daemon, and the ConfigMap that carries the
// context to it.
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "control/k8s/names.h"
#include "control/k8s/parts.h"
#include "control/k8s/render.h"
#include "control/k8s/yaml.h"

namespace eofaas::control::k8s {
namespace {

constexpr absl::string_view kContextKey = "context.tar.gz";
constexpr absl::string_view kContextDir = "/context";
constexpr absl::string_view kWorkspaceDir = "/workspace";
// The builder reports the pushed image's digest here; kubelet keeps it in the pod's status.
constexpr absl::string_view kTerminationLog = "/dev/termination-log";
// The user the BuildKit rootless image is made for, and its home.
constexpr int kBuildKitUser = 1000;
constexpr absl::string_view kBuildKitHome = "/home/user";

absl::Status Validate(const FunctionGeneration& generation, const BuildSpec& spec) {
  if (generation.deployment_name.empty()) return InvalidField("deployment_name", "required");
  if (spec.image.empty()) return InvalidField("image", "required");
  if (spec.context_archive.empty() == spec.context_url.empty()) {
    return InvalidField("context_archive",
                        "exactly one of context_archive and context_url is needed");
  }
  if (!spec.context_url.empty() && !absl::StartsWith(spec.context_url, "https://")) {
    return InvalidField("context_url", "must be an https:// URL");
  }
  if (spec.deadline <= absl::ZeroDuration()) return InvalidField("deadline", "must be positive");
  if (spec.backoff_limit < 0) return InvalidField("backoff_limit", "must not be negative");
  const size_t size = kContextKey.size() + spec.context_archive.size();
  if (size > kMaxConfigMapBytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        "build context: ", size, " bytes compressed, more than the ", kMaxConfigMapBytes,
        " bytes (1 MiB) a ConfigMap holds; configure an object store for build contexts, or ship "
        "fewer or smaller files"));
  }
  return absl::OkStatus();
}

YAML::Node Mount(absl::string_view volume, absl::string_view path, bool read_only) {
  YAML::Node mount;
  mount["name"] = String(volume);
  mount["mountPath"] = String(path);
  if (read_only) mount["readOnly"] = true;
  return mount;
}

YAML::Node EmptyDirVolume(absl::string_view name) {
  YAML::Node volume;
  volume["name"] = String(name);
  volume["emptyDir"] = YAML::Node(YAML::NodeType::Map);
  return volume;
}

// The pull secret as the builder's Docker config: <dir>/config.json.
YAML::Node DockerConfigVolume(const RegistryConfig& registry) {
  YAML::Node volume;
  volume["name"] = String("docker-config");
  volume["secret"]["secretName"] = String(registry.secret_name);
  YAML::Node item;
  item["key"] = String(".dockerconfigjson");
  item["path"] = String("config.json");
  volume["secret"]["items"].push_back(item);
  return volume;
}

YAML::Node ContextVolume(absl::string_view config_map) {
  YAML::Node volume;
  volume["name"] = String("context");
  volume["configMap"]["name"] = String(config_map);
  return volume;
}

// BuildKit rootless, daemonless: buildctl-daemonless.sh starts buildkitd for the one build.
// Rootless BuildKit makes its own user namespace, which the runtime's default seccomp and
// AppArmor profiles forbid, and maps its users with the setuid newuidmap: the build container
// alone runs Unconfined and may escalate, as an unprivileged user with no process sandbox of its
// own (--oci-worker-no-process-sandbox).
void BuildKitPod(const BuildSpec& spec, const RegistryConfig& registry, absl::string_view name,
                 YAML::Node& pod) {
  const std::string image =
      spec.builder_image.empty() ? std::string(kDefaultBuildKitImage) : spec.builder_image;
  pod["securityContext"]["runAsNonRoot"] = true;
  pod["securityContext"]["runAsUser"] = kBuildKitUser;
  pod["securityContext"]["runAsGroup"] = kBuildKitUser;

  std::vector<std::string> args = {"build", "--frontend", "dockerfile.v0"};
  if (spec.context_url.empty()) {
    // The ConfigMap holds an archive; the build reads a directory.
    YAML::Node unpack;
    unpack["name"] = String("context");
    unpack["image"] = String(image);
    unpack["command"] = Strings({"tar", "-xzf", absl::StrCat(kContextDir, "/", kContextKey), "-C",
                                 std::string(kWorkspaceDir)});
    unpack["securityContext"] = RestrictedSecurityContext();
    unpack["volumeMounts"].push_back(Mount("context", kContextDir, true));
    unpack["volumeMounts"].push_back(Mount("workspace", kWorkspaceDir, false));
    pod["initContainers"].push_back(unpack);
    args.insert(args.end(), {"--local", absl::StrCat("context=", kWorkspaceDir), "--local",
                             absl::StrCat("dockerfile=", kWorkspaceDir)});
  } else {
    // The Dockerfile frontend downloads and unpacks the archive itself.
    args.insert(args.end(), {"--opt", absl::StrCat("context=", spec.context_url)});
  }
  args.insert(args.end(), {"--output",
                           absl::StrCat("type=image,name=", spec.image, ",push=true",
                                        registry.insecure ? ",registry.insecure=true" : ""),
                           "--metadata-file", std::string(kTerminationLog)});

  YAML::Node build;
  build["name"] = String("build");
  build["image"] = String(image);
  build["command"] = Strings({"buildctl-daemonless.sh"});
  build["args"] = Arguments(args);
  build["env"].push_back(EnvVar("BUILDKITD_FLAGS", "--oci-worker-no-process-sandbox"));
  build["env"].push_back(EnvVar("DOCKER_CONFIG", absl::StrCat(kBuildKitHome, "/.docker")));
  build["resources"] = ResourceRequirements(spec.resources);
  build["securityContext"]["seccompProfile"]["type"] = String("Unconfined");
  build["securityContext"]["appArmorProfile"]["type"] = String("Unconfined");
  if (spec.context_url.empty()) {
    build["volumeMounts"].push_back(Mount("workspace", kWorkspaceDir, true));
  }
  build["volumeMounts"].push_back(
      Mount("buildkitd", absl::StrCat(kBuildKitHome, "/.local/share/buildkit"), false));
  build["volumeMounts"].push_back(
      Mount("docker-config", absl::StrCat(kBuildKitHome, "/.docker"), true));
  pod["containers"].push_back(build);

  if (spec.context_url.empty()) {
    pod["volumes"].push_back(ContextVolume(name));
    pod["volumes"].push_back(EmptyDirVolume("workspace"));
  }
  pod["volumes"].push_back(EmptyDirVolume("buildkitd"));
  pod["volumes"].push_back(DockerConfigVolume(registry));
}

// The Kaniko executor (archived upstream in 2025) unpacks base images into its own root
// filesystem, so it runs as root in its container, though without privileges.
void KanikoPod(const BuildSpec& spec, const RegistryConfig& registry, absl::string_view name,
               YAML::Node& pod) {
  pod["securityContext"]["seccompProfile"]["type"] = String("RuntimeDefault");
  std::vector<std::string> args = {
      spec.context_url.empty() ? absl::StrCat("--context=tar://", kContextDir, "/", kContextKey)
                               : absl::StrCat("--context=", spec.context_url),
      absl::StrCat("--destination=", spec.image), absl::StrCat("--digest-file=", kTerminationLog)};
  if (registry.insecure) args.push_back("--insecure");

  YAML::Node build;
  build["name"] = String("build");
  build["image"] =
      String(spec.builder_image.empty() ? std::string(kDefaultKanikoImage) : spec.builder_image);
  build["args"] = Arguments(args);
  build["env"].push_back(EnvVar("DOCKER_CONFIG", "/kaniko/.docker"));
  build["resources"] = ResourceRequirements(spec.resources);
  build["securityContext"]["allowPrivilegeEscalation"] = false;
  build["securityContext"]["runAsUser"] = 0;
  if (spec.context_url.empty()) {
    build["volumeMounts"].push_back(Mount("context", kContextDir, true));
  }
  build["volumeMounts"].push_back(Mount("docker-config", "/kaniko/.docker", true));
  pod["containers"].push_back(build);

  if (spec.context_url.empty()) pod["volumes"].push_back(ContextVolume(name));
  pod["volumes"].push_back(DockerConfigVolume(registry));
}

YAML::Node ContextConfigMap(const FunctionGeneration& generation, const BuildSpec& spec,
                            absl::string_view name) {
  YAML::Node config_map = NewObject("v1", "ConfigMap", name, generation.namespace_name,
                                    Labels(generation, kBuildComponent), Annotations(generation));
  config_map["immutable"] = true;
  config_map["binaryData"][std::string(kContextKey)] =
      String(absl::Base64Escape(spec.context_archive));
  return config_map;
}

YAML::Node Job(const FunctionGeneration& generation, const BuildSpec& spec,
               const RegistryConfig& registry, absl::string_view name) {
  YAML::Node job = NewObject("batch/v1", "Job", name, generation.namespace_name,
                             Labels(generation, kBuildComponent), Annotations(generation));
  YAML::Node pod;
  pod["restartPolicy"] = String("Never");
  pod["automountServiceAccountToken"] = false;
  pod["enableServiceLinks"] = false;
  switch (spec.tool) {
    case BuildTool::kBuildKit:
      BuildKitPod(spec, registry, name, pod);
      break;
    case BuildTool::kKaniko:
      KanikoPod(spec, registry, name, pod);
      break;
  }
  YAML::Node body;
  body["backoffLimit"] = spec.backoff_limit;
  body["activeDeadlineSeconds"] = absl::ToInt64Seconds(absl::Ceil(spec.deadline, absl::Seconds(1)));
  body["template"]["metadata"]["labels"] = Labels(generation, kBuildComponent);
  body["template"]["metadata"]["annotations"] = Annotations(generation);
  body["template"]["spec"] = pod;
  job["spec"] = body;
  return job;
}

}  // namespace

absl::StatusOr<std::vector<YAML::Node>> RenderBuild(const FunctionGeneration& generation,
                                                    const BuildSpec& spec,
                                                    const RegistryConfig& registry) {
  if (auto status = Validate(generation, spec); !status.ok()) return status;
  const std::string name = RoleName(generation.deployment_name, kBuildComponent);
  std::vector<YAML::Node> objects;
  if (spec.context_url.empty()) objects.push_back(ContextConfigMap(generation, spec, name));
  objects.push_back(Job(generation, spec, registry, name));
  return objects;
}

}  // namespace eofaas::control::k8s
