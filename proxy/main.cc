// eofaas-proxy: wiring only. Parses options, learns replicas (from the control plane or a static
// file), and serves eofaas.v1.Invoker (gRPC) and the HTTP/1.1 invoke route over the dispatcher
// until SIGTERM or SIGINT, then drains both.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/grpc_server.h"
#include "common/log.h"
#include "common/metrics/metrics_server.h"
#include "common/options.h"
#include "proxy/discovery/control_plane_watch.h"
#include "proxy/discovery/endpoint_sink.h"
#include "proxy/discovery/load_reporter.h"
#include "proxy/discovery/static_endpoints.h"
#include "proxy/dispatch/event_loops.h"
#include "proxy/dispatch/http_dispatcher.h"
#include "proxy/ingress/http_ingress.h"
#include "proxy/ingress/ingress.h"
#include "proxy/ingress/invoker_service.h"
#include "proxy/plan/file_lister.h"
#include "proxy/plan/http_lister.h"

namespace eofaas::proxy {
namespace {

struct Flags {
  std::string listen = "127.0.0.1:50052";
  std::string http_listen = "127.0.0.1:8080";
  std::string metrics_listen = "127.0.0.1:9465";
  std::string control;
  std::string endpoints;
  std::vector<std::string> data_root;
  std::string tls_ca_file;
  int64_t threads = 2;
  int64_t queue_limit = 1024;
  int64_t pipeline_depth = 1;
  absl::Duration cursor_check_ttl = IngressOptions().cursor_check_ttl;
};

std::string Host(const std::string& address) { return address.substr(0, address.rfind(':')); }

// How this process names itself in load reports: host name and process id.
std::string ProxyName() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return absl::StrCat(host, "/", getpid());
}

absl::Status Run(int argc, char** argv) {
  Flags flags;
  common::Options options(
      "eofaas-proxy: runs functions over data cursors (gRPC eofaas.v1.Invoker), fanning them out "
      "over the replicas it learns from the control plane (--control) or a file (--endpoints).");
  options.AddString("listen", "gRPC listen address (host:port)", &flags.listen);
  options.AddString("http_listen", "HTTP/1.1 listen address (host:port)", &flags.http_listen);
  options.AddString("metrics_listen", "Prometheus /metrics listen address", &flags.metrics_listen);
  options.AddString("control", "eofaas-control address (host:port) to learn endpoints from",
                    &flags.control);
  options.AddString("endpoints", "YAML file of functions and their replica addresses",
                    &flags.endpoints);
  options.AddStringList("data_root", "directory file:// cursors and Map inputs may name",
                        &flags.data_root);
  options.AddString("tls_ca_file",
                    "PEM file of the certificate authorities https:// inputs are checked against "
                    "(default: the system's)",
                    &flags.tls_ca_file);
  options.AddInt("threads", "event loops, one thread each (dispatch and HTTP ingress)",
                 &flags.threads);
  options.AddInt("queue_limit",
                 "invocations of one function that may wait for a replica; beyond it Invoke gets "
                 "RESOURCE_EXHAUSTED (HTTP 429), while Map items, bounded by max_in_flight, wait",
                 &flags.queue_limit);
  options.AddInt("pipeline_depth",
                 "requests to one replica that share a connection when they start together "
                 "(HTTP/1.1 pipelining; answered in order, so each waits for those before it): "
                 "for functions whose calls take microseconds; 1 turns it off",
                 &flags.pipeline_depth);
  options.AddDuration("cursor_check_ttl",
                      "how long a file:// cursor that passed its data-root check is taken again "
                      "without a new one (0: check every time)",
                      &flags.cursor_check_ttl);
  if (auto status = options.Parse(argc, argv); !status.ok()) return status;
  if (options.help_requested()) {
    std::cout << options.Usage();
    return absl::OkStatus();
  }
  if (flags.control.empty() == flags.endpoints.empty()) {
    return absl::InvalidArgumentError("exactly one of --control and --endpoints is required");
  }
  if (flags.threads < 1 || flags.threads > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("threads: ", flags.threads, " is not in [1, 64]"));
  }
  if (flags.queue_limit < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("queue_limit: ", flags.queue_limit, " must be at least 1"));
  }
  if (flags.pipeline_depth < 1 || flags.pipeline_depth > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("pipeline_depth: ", flags.pipeline_depth, " is not in [1, 64]"));
  }
  if (flags.cursor_check_ttl < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cursor_check_ttl: ", absl::FormatDuration(flags.cursor_check_ttl), " is negative"));
  }
  for (const auto& [name, address] :
       {std::pair{"listen", flags.listen}, std::pair{"metrics_listen", flags.metrics_listen}}) {
    if (auto status = common::CheckListenAddress(name, address); !status.ok()) return status;
  }
  std::vector<std::string> roots;
  for (const auto& root : flags.data_root) {
    roots.push_back(std::filesystem::absolute(root).string());
  }
  absl::StatusOr<DataRoots> data_roots = DataRoots::Create(roots);
  if (!data_roots.ok()) {
    return absl::Status(data_roots.status().code(),
                        absl::StrCat("data_root: ", data_roots.status().message()));
  }
  if (!flags.tls_ca_file.empty() && access(flags.tls_ca_file.c_str(), R_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls_ca_file: cannot read ", flags.tls_ca_file, ": ", std::strerror(errno)));
  }
  std::optional<std::map<std::string, std::vector<ReplicaInfo>>> static_endpoints;
  if (!flags.endpoints.empty()) {
    auto loaded = LoadStaticEndpoints(flags.endpoints);
    if (!loaded.ok()) return loaded.status();
    static_endpoints = *std::move(loaded);
  }

  auto registry = std::make_shared<prometheus::Registry>();
  EventLoops loops(static_cast<int>(flags.threads));
  HttpDispatcherOptions dispatch_options{.queue_limit = static_cast<size_t>(flags.queue_limit)};
  dispatch_options.http.max_pipeline = static_cast<size_t>(flags.pipeline_depth);
  std::shared_ptr<HttpDispatcher> dispatcher =
      HttpDispatcher::Create(loops, common::SteadyClock::Get(), std::move(dispatch_options),
                             std::make_shared<DispatchMetrics>(registry));
  // With a control plane, the autoscaler hears of this proxy's load, and of cold calls at once.
  std::unique_ptr<LoadReporter> reporter;
  if (!static_endpoints) {
    reporter = std::make_unique<LoadReporter>(
        LoadReporterOptions{.address = flags.control, .proxy = ProxyName()}, *dispatcher);
    dispatcher->OnColdCall(
        [reporter = reporter.get()](const std::string&) { reporter->ReportNow(); });
  }
  FileLister file_lister(*data_roots);
  HttpLister http_lister({.ca_file = flags.tls_ca_file});
  IngressMetrics ingress_metrics(*registry);
  Ingress ingress(*dispatcher, *data_roots, {&file_lister, &http_lister}, ingress_metrics,
                  {.cursor_check_ttl = flags.cursor_check_ttl});
  InvokerService invoker(ingress.services());

  auto metrics_server = common::MetricsServer::Create(flags.metrics_listen, registry);
  if (!metrics_server.ok()) return metrics_server.status();
  common::GrpcServerConfig server_config;
  server_config.listen = flags.listen;
  server_config.registry = registry;
  auto server = common::GrpcServer::Start(server_config, {{&invoker, "eofaas.v1.Invoker"}});
  if (!server.ok()) return server.status();
  auto http = HttpIngress::Start(loops, ingress.services(),
                                 HttpIngressOptions{.listen = flags.http_listen});
  if (!http.ok()) {
    (*server)->Shutdown();
    return http.status();
  }

  // Ready once the first complete set of endpoints is known.
  EndpointSink& sink = *dispatcher;
  std::unique_ptr<ControlPlaneWatch> watch;
  if (static_endpoints) {
    for (auto& [function, replicas] : *static_endpoints) sink.Update(function, replicas);
    (*server)->SetServing(true);
  } else {
    common::GrpcServer* serving = server->get();
    watch = std::make_unique<ControlPlaneWatch>(
        ControlPlaneWatchOptions{.address = flags.control}, sink, [serving] {
          static std::once_flag once;
          std::call_once(once, [serving] {
            common::LogInfo("first endpoints snapshot: serving");
            serving->SetServing(true);
          });
        });
    watch->Start();
    reporter->Start();
  }
  common::LogInfo("eofaas-proxy serving grpc=", Host(flags.listen), ":", (*server)->port(),
                  " http=", Host(flags.http_listen), ":", (*http)->port(),
                  " metrics=", Host(flags.metrics_listen), ":", (*metrics_server)->port(),
                  " endpoints=", static_endpoints ? flags.endpoints : "control:" + flags.control,
                  " data_roots=", data_roots->roots().size());

  int signal = common::WaitForShutdownSignal();
  common::LogInfo("signal ", signal, ": draining");
  // The endpoints stay as they are while in-flight calls finish.
  if (watch) watch->Stop();
  if (reporter) reporter->Stop();
  // Both fronts: stop accepting, let in-flight calls run for the grace, cancel the rest.
  std::thread http_drain(
      [&http, grace = server_config.shutdown_grace] { (*http)->Shutdown(grace); });
  (*server)->Shutdown();
  http_drain.join();
  dispatcher->Shutdown();
  return absl::OkStatus();
}

}  // namespace
}  // namespace eofaas::proxy

int main(int argc, char** argv) {
  eofaas::common::BlockShutdownSignals();
  // Debian's Abseil is built in debug mode, where every Mutex lock also looks itself up in a
  // process-wide lock graph; a release build does not, and neither does the proxy.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::Status status = eofaas::proxy::Run(argc, argv);
  if (!status.ok()) {
    eofaas::common::LogError("eofaas-proxy: ", status.ToString());
    return absl::IsInvalidArgument(status) ? 2 : 1;
  }
  return 0;
}
