// eofaas-control: wiring only. Parses options, opens the store, builds the backends and serves
// eofaas.v1.Provision and eofaas.v1.Endpoints until SIGTERM or SIGINT.
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/grpc_server.h"
#include "common/log.h"
#include "common/metrics/metrics_server.h"
#include "common/options.h"
#include "common/worker_pool.h"
#include "control/api/endpoints_service.h"
#include "control/api/provision_service.h"
#include "control/build/local_builder.h"
#include "control/build/template_catalog.h"
#include "control/controller.h"
#include "control/deploy/local_deployer.h"
#include "control/deploy/sandbox.h"
#include "control/k8s/runtime/kube_runtime.h"
#include "control/metrics.h"
#include "control/store/sqlite_store.h"

namespace eofaas::control {
namespace {

namespace fs = std::filesystem;

struct Flags {
  std::string listen = "127.0.0.1:50051";
  std::string metrics_listen = "127.0.0.1:9464";
  std::string data_dir = "eofaas-data";
  std::string templates_dir = "templates";
  std::string runtime = "local";
  std::string sandbox = "auto";
  std::vector<std::string> data_root;
  int64_t max_source_bytes = 4 << 20;
  int64_t max_replicas = 16;
  int64_t max_functions = 1000;
  int64_t build_workers = 2;
  absl::Duration build_timeout = absl::Minutes(5);
  absl::Duration drain_timeout = absl::Seconds(10);
  absl::Duration progress_deadline = absl::Seconds(60);
  absl::Duration autoscale_stable_window = absl::Seconds(60);
  absl::Duration autoscale_panic_window = absl::Seconds(6);
  absl::Duration scale_to_zero_grace = absl::Seconds(60);
  // runtime kubernetes
  std::string kubeconfig;
  std::string kubernetes_namespace = "eofaas-functions";
  std::string kubernetes_autoscaling = "control";
  std::string registry;
  std::string registry_repository = "eofaas";
  std::string registry_secret = "eofaas-registry";
  std::string registry_credentials;
  bool registry_insecure = false;
  std::string image_builder = "buildkit";
  std::string builder_image;
};

// The builder and deployer of the runtime the flags name, and what they hold on to (declared
// first, so destroyed last).
struct Runtime {
  std::unique_ptr<k8s::KubeClient> kube_client;
  std::unique_ptr<Builder> builder;
  std::unique_ptr<Deployer> deployer;
};

absl::StatusOr<Runtime> MakeLocalRuntime(const Flags& flags, const fs::path& data_dir,
                                         const std::string& instance_id,
                                         std::shared_ptr<prometheus::Registry> registry) {
  SandboxMode sandbox_mode;
  if (flags.sandbox == "none") {
    sandbox_mode = SandboxMode::kNone;
  } else if (flags.sandbox == "bwrap" || flags.sandbox == "auto") {
    sandbox_mode = BwrapAvailable() ? SandboxMode::kBwrap : SandboxMode::kNone;
    if (flags.sandbox == "bwrap" && sandbox_mode == SandboxMode::kNone) {
      return absl::FailedPreconditionError("sandbox: bwrap requested but bubblewrap does not work");
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("sandbox: \"", flags.sandbox, "\" (known: auto, bwrap, none)"));
  }
  std::vector<std::string> data_roots;
  for (const auto& root : flags.data_root) data_roots.push_back(fs::absolute(root).string());
  LocalDeployerOptions options;
  options.instance_id = instance_id;
  options.log_dir = (data_dir / "logs").string();
  options.data_roots = data_roots;
  options.sandbox = sandbox_mode;
  options.drain_timeout = absl::ToChronoMilliseconds(flags.drain_timeout);
  auto deployer = LocalDeployer::Create(options, common::SteadyClock::Get(), std::move(registry));
  if (!deployer.ok()) return deployer.status();
  common::LogInfo("runtime local: sandbox=", SandboxModeName(sandbox_mode));
  return Runtime{
      .builder =
          std::make_unique<LocalBuilder>((data_dir / "bundles").string(), flags.build_timeout),
      .deployer = *std::move(deployer),
  };
}

absl::StatusOr<Runtime> MakeKubernetesRuntime(const Flags& flags, const fs::path& data_dir) {
  if (flags.kubernetes_autoscaling != "control" && flags.kubernetes_autoscaling != "hpa") {
    return absl::InvalidArgumentError(absl::StrCat(
        "kubernetes_autoscaling: \"", flags.kubernetes_autoscaling, "\" (known: control, hpa)"));
  }
  absl::StatusOr<k8s::KubeRuntime> runtime = k8s::MakeKubeRuntime({
      .kubeconfig = flags.kubeconfig,
      .namespace_name = flags.kubernetes_namespace,
      .registry = {.server = flags.registry,
                   .repository = flags.registry_repository,
                   .secret_name = flags.registry_secret,
                   .insecure = flags.registry_insecure},
      .registry_credentials_dir = flags.registry_credentials,
      .image_builder = flags.image_builder,
      .builder_image = flags.builder_image,
      .bundles_dir = (data_dir / "bundles").string(),
      .build_timeout = flags.build_timeout,
      .drain_timeout = flags.drain_timeout,
      .progress_deadline = flags.progress_deadline,
      .hpa = flags.kubernetes_autoscaling == "hpa",
  });
  if (!runtime.ok()) return runtime.status();
  common::LogInfo("runtime kubernetes: namespace=", flags.kubernetes_namespace,
                  " registry=", flags.registry, " image_builder=", flags.image_builder,
                  " autoscaling=", flags.kubernetes_autoscaling);
  return Runtime{
      .kube_client = std::move(runtime->client),
      .builder = std::move(runtime->builder),
      .deployer = std::move(runtime->deployer),
  };
}

absl::Status Run(int argc, char** argv) {
  Flags flags;
  common::Options options(
      "eofaas-control: the eofaas control plane (Provision and Endpoints gRPC services).");
  options.AddString("listen", "gRPC listen address (host:port)", &flags.listen);
  options.AddString("metrics_listen", "Prometheus /metrics listen address", &flags.metrics_listen);
  options.AddString("data_dir", "state, bundles and replica logs", &flags.data_dir);
  options.AddString("templates_dir", "directory of templates (<name>/template.yaml)",
                    &flags.templates_dir);
  options.AddString("runtime", "where replicas run: local or kubernetes", &flags.runtime);
  options.AddString("sandbox", "replica sandbox: auto (bubblewrap when present), bwrap, none",
                    &flags.sandbox);
  options.AddStringList("data_root", "directory replicas may read file:// data from (repeatable)",
                        &flags.data_root);
  options.AddInt("max_source_bytes", "largest total size of a function's files",
                 &flags.max_source_bytes);
  options.AddInt("max_replicas", "largest scaling.max_replicas accepted", &flags.max_replicas);
  options.AddInt("max_functions", "most functions held at once", &flags.max_functions);
  options.AddInt("build_workers", "builds running at once", &flags.build_workers);
  options.AddDuration("build_timeout", "longest a build check may run", &flags.build_timeout);
  options.AddDuration("drain_timeout", "how long a stopping replica may finish its work",
                      &flags.drain_timeout);
  options.AddDuration("progress_deadline", "how long replicas may take to become ready",
                      &flags.progress_deadline);
  options.AddDuration("autoscale_stable_window",
                      "the autoscaler averages the observed concurrency over this window",
                      &flags.autoscale_stable_window);
  options.AddDuration("autoscale_panic_window",
                      "the short window that detects bursts (panic mode scales up at once)",
                      &flags.autoscale_panic_window);
  options.AddDuration("scale_to_zero_grace",
                      "idle time after which a function with min_replicas 0 has no replica",
                      &flags.scale_to_zero_grace);
  options.AddString("kubeconfig",
                    "kubernetes: the cluster's kubeconfig (empty: the pod's service account)",
                    &flags.kubeconfig);
  options.AddString("kubernetes_namespace", "kubernetes: where functions and builds run",
                    &flags.kubernetes_namespace);
  options.AddString("kubernetes_autoscaling",
                    "kubernetes: who scales between min and max replicas: control (the control "
                    "plane sets the Deployment's replicas) or hpa (a HorizontalPodAutoscaler on "
                    "CPU; scaling to zero stays with the control plane)",
                    &flags.kubernetes_autoscaling);
  options.AddString("registry", "kubernetes: host[:port] images are pushed to and pulled from",
                    &flags.registry);
  options.AddString("registry_repository", "kubernetes: the images' path under the registry",
                    &flags.registry_repository);
  options.AddString("registry_secret", "kubernetes: the pull Secret in the functions' namespace",
                    &flags.registry_secret);
  options.AddString("registry_credentials",
                    "kubernetes: directory with the files username and password the pull Secret "
                    "is written from (empty: the Secret is managed elsewhere)",
                    &flags.registry_credentials);
  options.AddBool("registry_insecure", "kubernetes: the registry speaks plain HTTP (tests only)",
                  &flags.registry_insecure);
  options.AddString("image_builder", "kubernetes: buildkit (rootless) or kaniko",
                    &flags.image_builder);
  options.AddString("builder_image", "kubernetes: the image builder's image (empty: its default)",
                    &flags.builder_image);
  if (auto status = options.Parse(argc, argv); !status.ok()) return status;
  if (options.help_requested()) {
    std::cout << options.Usage();
    return absl::OkStatus();
  }
  if (flags.runtime != "local" && flags.runtime != "kubernetes") {
    return absl::InvalidArgumentError(
        absl::StrCat("runtime: \"", flags.runtime, "\" (known: local, kubernetes)"));
  }
  for (const auto& [name, value, max] :
       {std::tuple{"max_source_bytes", flags.max_source_bytes, int64_t{1} << 30},
        std::tuple{"max_replicas", flags.max_replicas, 10000L},
        std::tuple{"max_functions", flags.max_functions, 100000L},
        std::tuple{"build_workers", flags.build_workers, 64L}}) {
    if (value < 1 || value > max) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": ", value, " is not in [1, ", max, "]"));
    }
  }

  for (const auto& [name, value, zero_allowed] :
       {std::tuple{"build_timeout", flags.build_timeout, false},
        std::tuple{"progress_deadline", flags.progress_deadline, false},
        std::tuple{"drain_timeout", flags.drain_timeout, true}}) {
    if (value < absl::ZeroDuration() || (value == absl::ZeroDuration() && !zero_allowed)) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": ", absl::FormatDuration(value),
                       zero_allowed ? " is negative" : " is not positive"));
    }
  }
  for (const auto& [name, address] :
       {std::pair{"listen", flags.listen}, std::pair{"metrics_listen", flags.metrics_listen}}) {
    if (auto status = common::CheckListenAddress(name, address); !status.ok()) return status;
  }

  std::error_code error;
  fs::create_directories(fs::path(flags.data_dir) / "logs", error);
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("data_dir: cannot create ", flags.data_dir, ": ", error.message()));
  }
  const fs::path data_dir = fs::absolute(flags.data_dir);

  auto registry = std::make_shared<prometheus::Registry>();
  auto templates = TemplateCatalog::Load(flags.templates_dir);
  if (!templates.ok()) return templates.status();
  auto store = SqliteStore::Open((data_dir / "state.db").string());
  if (!store.ok()) return store.status();
  absl::StatusOr<Runtime> runtime =
      flags.runtime == "kubernetes"
          ? MakeKubernetesRuntime(flags, data_dir)
          : MakeLocalRuntime(flags, data_dir, (*store)->InstanceId(), registry);
  if (!runtime.ok()) return runtime.status();
  std::vector<std::string> template_names;
  for (const Template* t : (*templates)->All()) template_names.push_back(t->name);
  ControlMetrics metrics(*registry, template_names);

  ControllerOptions controller_options;
  controller_options.limits.max_source_bytes = flags.max_source_bytes;
  controller_options.limits.max_replicas = static_cast<int32_t>(flags.max_replicas);
  controller_options.max_functions = static_cast<int>(flags.max_functions);
  controller_options.build_workers = static_cast<int>(flags.build_workers);
  controller_options.progress_deadline = absl::ToChronoMilliseconds(flags.progress_deadline);
  controller_options.autoscaler.stable_window =
      absl::ToChronoSeconds(flags.autoscale_stable_window);
  controller_options.autoscaler.panic_window = absl::ToChronoSeconds(flags.autoscale_panic_window);
  controller_options.autoscaler.scale_to_zero_grace =
      absl::ToChronoSeconds(flags.scale_to_zero_grace);
  controller_options.cluster_autoscaling =
      flags.runtime == "kubernetes" && flags.kubernetes_autoscaling == "hpa";
  Controller controller(controller_options, **store, **templates, *runtime->builder,
                        *runtime->deployer, common::SteadyClock::Get(), metrics);

  // The state is loaded and the replicas adopted before the first call is accepted.
  if (auto status = controller.Start(); !status.ok()) return status;
  auto metrics_server = common::MetricsServer::Create(flags.metrics_listen, registry);
  if (!metrics_server.ok()) return metrics_server.status();
  common::WorkerPool api_workers("api", 4, 4096);
  ProvisionService provision(controller, api_workers);
  EndpointsService endpoints(controller);
  common::GrpcServerConfig server_config;
  server_config.listen = flags.listen;
  server_config.registry = registry;
  // Room above the source limit, so that an oversized function is answered by validation
  // (INVALID_ARGUMENT naming the field) rather than by the transport.
  server_config.max_receive_message_bytes = static_cast<int>(flags.max_source_bytes + (1 << 20));
  auto server = common::GrpcServer::Start(
      server_config, {{&provision, "eofaas.v1.Provision"}, {&endpoints, "eofaas.v1.Endpoints"}});
  if (!server.ok()) return server.status();
  (*server)->SetServing(true);
  const std::string host = flags.listen.substr(0, flags.listen.rfind(':'));
  const std::string metrics_host = flags.metrics_listen.substr(0, flags.metrics_listen.rfind(':'));
  common::LogInfo("eofaas-control serving grpc=", host, ":", (*server)->port(),
                  " metrics=", metrics_host, ":", (*metrics_server)->port(),
                  " data_dir=", data_dir.string(), " instance=", (*store)->InstanceId(),
                  " runtime=", flags.runtime);

  int signal = common::WaitForShutdownSignal();
  common::LogInfo("signal ", signal, ": shutting down");
  // Watches never end by themselves: ended now, so that the server's grace goes to other calls.
  const grpc::Status stopping(grpc::StatusCode::UNAVAILABLE, "the control plane is shutting down");
  provision.EndStreams(stopping);
  endpoints.EndStreams(stopping);
  (*server)->Shutdown();
  controller.Shutdown();
  return absl::OkStatus();
}

}  // namespace
}  // namespace eofaas::control

int main(int argc, char** argv) {
  eofaas::common::BlockShutdownSignals();
  absl::Status status = eofaas::control::Run(argc, argv);
  if (!status.ok()) {
    eofaas::common::LogError("eofaas-control: ", status.ToString());
    return absl::IsInvalidArgument(status) ? 2 : 1;
  }
  return 0;
}
