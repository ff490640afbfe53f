// GrpcServer: the ServerBuilder set-up both binaries share, and the shutdown signal wait.
#include "common/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <pthread.h>
#include <signal.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/metrics/grpc_metrics.h"
#include "google/protobuf/descriptor.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace eofaas::common {
namespace {

constexpr int kKeepaliveTimeMs = 30'000;
constexpr int kKeepaliveTimeoutMs = 10'000;
// Clients may ping this often (even with no call in flight) without being told GOAWAY.
constexpr int kMinClientPingIntervalMs = 10'000;

// The methods the metrics count besides the application's: health and reflection. Naming the
// health service's descriptor here also links its generated code, so that reflection can
// describe the service (gRPC's own health service carries no protobuf descriptor).
std::vector<GrpcMethod> BuiltInMethods() {
  std::vector<GrpcMethod> methods = MethodsOf(
      *grpc::health::v1::HealthCheckRequest::descriptor()->file()->FindServiceByName("Health"));
  const google::protobuf::ServiceDescriptor* reflection =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          "grpc.reflection.v1alpha.ServerReflection");
  if (reflection != nullptr) {
    for (GrpcMethod& method : MethodsOf(*reflection)) methods.push_back(std::move(method));
  }
  return methods;
}

sigset_t ShutdownSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  return signals;
}

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    const GrpcServerConfig& config, std::vector<ServiceBinding> services) {
  std::vector<GrpcMethod> methods = BuiltInMethods();
  std::vector<std::string> service_names;
  for (const ServiceBinding& binding : services) {
    const google::protobuf::ServiceDescriptor* descriptor =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(binding.name);
    if (descriptor == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown gRPC service \"", binding.name, "\""));
    }
    for (GrpcMethod& method : MethodsOf(*descriptor)) methods.push_back(std::move(method));
    service_names.push_back(binding.name);
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config.listen, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(config.max_receive_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             kMinClientPingIntervalMs);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  for (const ServiceBinding& binding : services) builder.RegisterService(binding.service);
  if (config.registry != nullptr) {
    auto metrics = NewGrpcServerMetrics(config.registry, methods);
    if (!metrics.ok()) return metrics.status();
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(*std::move(metrics));
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }

  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen for gRPC on ", config.listen));
  }
  // The default health service starts out SERVING for "": report readiness only when told.
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus("", false);
  for (const std::string& name : service_names) health->SetServingStatus(name, false);
  LogInfo("gRPC server listening on ", config.listen, " (port ", port, ")");
  return std::unique_ptr<GrpcServer>(
      new GrpcServer(std::move(server), std::move(service_names), port, config.shutdown_grace));
}

GrpcServer::GrpcServer(std::unique_ptr<grpc::Server> server, std::vector<std::string> service_names,
                       int port, absl::Duration shutdown_grace)
    : server_(std::move(server)),
      service_names_(std::move(service_names)),
      port_(port),
      shutdown_grace_(shutdown_grace) {}

GrpcServer::~GrpcServer() { Shutdown(); }

void GrpcServer::SetServing(bool serving) {
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  health->SetServingStatus("", serving);
  for (const std::string& name : service_names_) health->SetServingStatus(name, serving);
}

void GrpcServer::Shutdown() {
  std::call_once(shutdown_once_, [this] {
    // Health first, so that balancers stop sending before the listener closes.
    server_->GetHealthCheckService()->Shutdown();
    server_->Shutdown(absl::ToChronoTime(absl::Now() + shutdown_grace_));
  });
}

void BlockShutdownSignals() {
  sigset_t signals = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

int WaitForShutdownSignal() {
  sigset_t signals = ShutdownSignals();
  int signal = 0;
  while (sigwait(&signals, &signal) != 0) {
  }
  return signal;
}

}  // namespace eofaas::common
