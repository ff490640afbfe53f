#include "control/k8s/runtime/kube_runtime.h"

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace eofaas::control::k8s {
namespace {

// One file of the credentials directory, without the line end a `kubectl create secret
// --from-file` of an edited file keeps. Errors name the file, never its content.
absl::StatusOr<std::string> ReadCredential(const std::filesystem::path& dir, const char* name) {
  const std::filesystem::path path = dir / name;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat("registry_credentials: cannot read ", path.string()));
  }
  std::stringstream content;
  content << in.rdbuf();
  std::string value(absl::StripTrailingAsciiWhitespace(content.str()));
  if (value.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("registry_credentials: ", path.string(), " is empty"));
  }
  return value;
}

absl::StatusOr<BuildTool> ParseBuildTool(const std::string& name) {
  if (name == "buildkit") return BuildTool::kBuildKit;
  if (name == "kaniko") return BuildTool::kKaniko;
  return absl::InvalidArgumentError(
      absl::StrCat("image_builder: \"", name, "\" (known: buildkit, kaniko)"));
}

}  // namespace

absl::StatusOr<KubeRuntime> MakeKubeRuntime(const KubeRuntimeOptions& options) {
  absl::StatusOr<BuildTool> tool = ParseBuildTool(options.image_builder);
  if (!tool.ok()) return tool.status();
  if (options.registry.server.empty()) {
    return absl::InvalidArgumentError("registry: required with runtime kubernetes");
  }
  std::optional<RegistryCredentials> credentials;
  if (!options.registry_credentials_dir.empty()) {
    absl::StatusOr<std::string> username =
        ReadCredential(options.registry_credentials_dir, "username");
    if (!username.ok()) return username.status();
    absl::StatusOr<std::string> password =
        ReadCredential(options.registry_credentials_dir, "password");
    if (!password.ok()) return password.status();
    credentials = RegistryCredentials{*std::move(username), *std::move(password)};
  }
  absl::StatusOr<KubeConfig> config =
      options.kubeconfig.empty() ? LoadInClusterConfig() : LoadKubeconfig(options.kubeconfig);
  if (!config.ok()) {
    return absl::Status(
        config.status().code(),
        absl::StrCat(options.kubeconfig.empty() ? "in-cluster configuration: " : "kubeconfig: ",
                     config.status().message()));
  }

  KubeRuntime runtime;
  absl::StatusOr<std::unique_ptr<KubeClient>> client = KubeClient::Create(*config);
  if (!client.ok()) return client.status();
  runtime.client = *std::move(client);

  absl::StatusOr<std::unique_ptr<KubeBuilder>> builder =
      KubeBuilder::Create(*runtime.client, options.bundles_dir,
                          {.namespace_name = options.namespace_name,
                           .registry = options.registry,
                           .credentials = std::move(credentials),
                           .tool = *tool,
                           .builder_image = options.builder_image,
                           .deadline = options.build_timeout});
  if (!builder.ok()) return builder.status();
  runtime.builder = *std::move(builder);

  KubeDeployerOptions deployer_options{
      .namespace_name = options.namespace_name, .registry = options.registry, .hpa = options.hpa};
  deployer_options.workload.drain_timeout = options.drain_timeout;
  deployer_options.workload.progress_deadline = options.progress_deadline;
  absl::StatusOr<std::unique_ptr<KubeDeployer>> deployer =
      KubeDeployer::Create(*runtime.client, std::move(deployer_options));
  if (!deployer.ok()) return deployer.status();
  runtime.deployer = *std::move(deployer);
  return runtime;
}

}  // namespace eofaas::control::k8s
