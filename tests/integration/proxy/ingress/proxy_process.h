// Starts the real eofaas-proxy binary for a test and talks to it over gRPC.
#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "eofaas/v1/invoker.grpc.pb.h"

namespace eofaas::tests {

/// One eofaas-proxy process on loopback ports chosen by the kernel.
class ProxyProcess {
 public:
  /// Starts the binary with `flags` (besides --listen, --http_listen and --metrics_listen), its
  /// output in `log_path`, and waits until its health service says SERVING.
  static absl::StatusOr<std::unique_ptr<ProxyProcess>> Start(std::vector<std::string> flags,
                                                             std::string log_path);
  /// Stops the process gracefully (SIGTERM) when it still runs.
  ~ProxyProcess();

  /// Sends SIGTERM without waiting.
  void Terminate();
  /// Waits for the process to end; the exit status as waitpid reports it.
  int Wait();

  const std::string& grpc_address() const { return grpc_address_; }
  const std::string& http_address() const { return http_address_; }
  const std::string& metrics_address() const { return metrics_address_; }
  std::string Log() const;

  std::shared_ptr<grpc::Channel> channel() { return channel_; }
  eofaas::v1::Invoker::Stub& invoker() { return *invoker_; }

 private:
  ProxyProcess() = default;

  pid_t pid_ = -1;
  std::string log_path_;
  std::string grpc_address_;
  std::string http_address_;
  std::string metrics_address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<eofaas::v1::Invoker::Stub> invoker_;
};

}  // namespace eofaas::tests
