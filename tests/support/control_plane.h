// Starts the real eofaas-control binary for a test and talks to it over gRPC.
#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "eofaas/v1/endpoints.grpc.pb.h"
#include "eofaas/v1/provision.grpc.pb.h"

namespace eofaas::tests {

struct ControlPlaneOptions {
  std::string data_dir;
  std::string templates_dir = EOFAAS_SOURCE_DIR "/templates";
  std::vector<std::string> flags;
};

/// One eofaas-control process on loopback ports chosen by the kernel.
class ControlPlane {
 public:
  /// Starts the binary and waits until its health service says SERVING.
  static absl::StatusOr<std::unique_ptr<ControlPlane>> Start(ControlPlaneOptions options);
  /// Stops the process gracefully (SIGTERM) when it still runs.
  ~ControlPlane();

  /// SIGTERM and wait; the exit status as waitpid reports it.
  int Stop();
  /// SIGKILL: the process dies at once, whatever it was doing.
  void Kill();

  pid_t pid() const { return pid_; }
  const std::string& grpc_address() const { return grpc_address_; }
  const std::string& metrics_address() const { return metrics_address_; }
  /// Marks every replica process of this control plane (EOFAAS_INSTANCE).
  const std::string& instance() const { return instance_; }
  std::string Log() const;

  eofaas::v1::Provision::Stub& provision() { return *provision_; }
  eofaas::v1::Endpoints::Stub& endpoints() { return *endpoints_; }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }

  /// Polls GetFunction until `done` holds; DEADLINE_EXCEEDED with the last state otherwise.
  absl::StatusOr<eofaas::v1::Function> WaitFor(
      const std::string& name, const std::function<bool(const eofaas::v1::Function&)>& done,
      absl::Duration timeout = absl::Seconds(30));
  /// Polls GetFunction until it answers NOT_FOUND.
  absl::Status WaitGone(const std::string& name, absl::Duration timeout = absl::Seconds(30));
  /// GetBuildLog's lines for `generation` (0: the latest), following a running build to its end
  /// when `follow`. A failed call is a test failure.
  std::vector<std::string> BuildLog(const std::string& name, int64_t generation = 0,
                                    bool follow = false);
  /// WaitFor READY with ready_replicas >= `replicas` at `generation` (0: any).
  absl::StatusOr<eofaas::v1::Function> WaitReady(const std::string& name, int replicas = 1,
                                                 int64_t generation = 0);

 private:
  ControlPlane() = default;

  pid_t pid_ = -1;
  std::string log_path_;
  std::string grpc_address_;
  std::string metrics_address_;
  std::string instance_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<eofaas::v1::Provision::Stub> provision_;
  std::unique_ptr<eofaas::v1::Endpoints::Stub> endpoints_;
};

/// Writes under `dir` a copy of the python3 template whose build check first runs the shell
/// command `before_check` (by default a two-second sleep, wide enough to act inside) and returns
/// the templates directory. `before_check` lands in a YAML double-quoted string: no `"` or `\`.
std::string SlowBuildTemplates(const std::string& dir, const std::string& before_check = "sleep 2");

/// A function of `template_name` made from the source files of examples/<example> (all but
/// README.md).
eofaas::v1::Function ExampleFunction(const std::string& name,
                                     const std::string& example = "python3-linecount",
                                     const std::string& template_name = "python3");

/// Process groups of replicas started by the control plane marked `instance`, each as
/// "<function>/<generation>" (one entry per replica).
std::vector<std::string> ReplicaGroups(const std::string& instance);

/// SIGKILLs every replica process group of `instance`.
void KillReplicaGroups(const std::string& instance);

/// SIGKILLs the process group of `instance`'s replica listening on `address` ("127.0.0.1:<port>",
/// as the proxy names replicas) and waits until its processes are gone (10 s at most). False when
/// no such replica runs.
bool KillReplicaGroup(const std::string& instance, const std::string& address);

/// A grpc::ClientContext with a deadline `timeout` from now.
std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = absl::Seconds(10));

}  // namespace eofaas::tests
