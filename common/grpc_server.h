// The gRPC server both eofaas binaries run: callback services plus reflection, health, keepalive,
// go-grpc-prometheus metrics and a graceful shutdown; and the signal wait that ends main.
#pragma once

#include <grpcpp/server.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "prometheus/registry.h"

namespace eofaas::common {

struct GrpcServerConfig {
  /// "host:port"; port 0 picks a free port (see GrpcServer::port()).
  std::string listen;
  /// Where the grpc_server_* metrics go; null for none.
  std::shared_ptr<prometheus::Registry> registry;
  int max_receive_message_bytes = 8 << 20;
  /// How long Shutdown() lets in-flight RPCs finish before cancelling them.
  absl::Duration shutdown_grace = absl::Seconds(5);
};

/// A service to serve and the full name of the proto service it implements, e.g.
/// `{&provision, eofaas::v1::Provision::service_full_name()}`; the name (looked up in the
/// generated descriptor pool) labels its health status and metrics.
struct ServiceBinding {
  grpc::Service* service;
  std::string name;
};

/// A started server. Thread-safe. Services must outlive it.
class GrpcServer {
 public:
  /// Registers `services`, server reflection, grpc.health.v1.Health (NOT_SERVING for "" and each
  /// service until SetServing(true)), the metrics interceptor, keepalive settings, and starts
  /// listening on `config.listen` (without SO_REUSEPORT, so a port in use is an error).
  /// Errors: INVALID_ARGUMENT for a service name unknown to the generated descriptor pool;
  /// UNAVAILABLE naming the address when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(const GrpcServerConfig& config,
                                                           std::vector<ServiceBinding> services);

  /// Calls Shutdown().
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  /// Sets the health status of "" and of every registered service. No effect after Shutdown().
  void SetServing(bool serving);

  /// The port actually bound.
  int port() const { return port_; }

  /// Reports NOT_SERVING, stops accepting RPCs, lets in-flight ones run for the shutdown grace,
  /// cancels the rest, and returns once all have ended. Idempotent.
  void Shutdown();

 private:
  GrpcServer(std::unique_ptr<grpc::Server> server, std::vector<std::string> service_names, int port,
             absl::Duration shutdown_grace);

  const std::unique_ptr<grpc::Server> server_;
  const std::vector<std::string> service_names_;
  const int port_;
  const absl::Duration shutdown_grace_;
  std::once_flag shutdown_once_;
};

/// Blocks SIGTERM and SIGINT in the calling thread and in every thread it creates afterwards.
/// Call at the top of main, before any thread (gRPC's included) starts, so that only
/// WaitForShutdownSignal() receives them.
void BlockShutdownSignals();

/// Waits for SIGTERM or SIGINT (blocked beforehand by BlockShutdownSignals()) and returns it.
int WaitForShutdownSignal();

}  // namespace eofaas::common
