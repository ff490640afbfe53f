// The local replicas of one function, of every generation, and the rollout rules that move them
// towards the latest spec. LocalDeployer keeps one per function and runs it from its thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/subprocess.h"
#include "control/deploy/deployer.h"
#include "control/deploy/replica_process.h"
#include "control/deploy/restart_backoff.h"

namespace prometheus {
class Counter;
}  // namespace prometheus

namespace eofaas::control {

struct LocalDeployerOptions;

/// Replicas by state, as exported in eofaas_replicas{state}.
struct ReplicaCounts {
  int starting = 0;
  int ready = 0;
  int unready = 0;
  int draining = 0;
  /// Slots waiting for their restart delay.
  int backoff = 0;
};

/// Keeps `spec.replicas` replicas (slots 0..n-1) of the latest spec's generation: starts missing
/// ones, probes them, restarts crashed ones after their backoff, publishes the ready replicas of
/// the serving generation, switches it to the target once the target is fully ready (or nothing
/// else is), then drains every other replica: out of the endpoints first, SIGTERM on the next
/// pass, SIGKILL after the drain timeout.
///
/// Not thread-safe: owned by LocalDeployer's supervisor thread.
class FunctionReplicas {
 public:
  /// What every function of one deployer shares; all of it outlives this object.
  struct Shared {
    const LocalDeployerOptions& options;
    const common::Clock& clock;
    prometheus::Counter& restarts;
    /// A loopback port that no replica of the deployer holds.
    std::function<absl::StatusOr<int>()> new_port;
  };

  FunctionReplicas(std::string name, Shared shared);
  ~FunctionReplicas();
  FunctionReplicas(const FunctionReplicas&) = delete;
  FunctionReplicas& operator=(const FunctionReplicas&) = delete;

  /// Makes `spec` the target; `launch` holds its argv, cwd and rlimits (see SandboxedCommand).
  void SetSpec(DeploymentSpec spec, common::SpawnOptions launch);

  /// Drains everything; Supervise reports `removed` once nothing is left.
  void Remove();

  /// Takes over a replica left by a previous control plane, probing it once. False (and nothing
  /// taken) when a replica already holds that generation's slot.
  bool Adopt(const ReplicaIdentity& identity, ReplicaProcess process);

  /// After adoption: the oldest generation with a ready replica serves until the rollout rules,
  /// once a spec arrives, decide otherwise.
  void ServeOldestReadyGeneration();

  /// One supervision pass. Returns the observation when it changed since the last one returned
  /// (only once a spec or a removal exists: adopted replicas alone are not reported).
  std::optional<DeploymentObservation> Supervise();

  /// True once removed, or when only adopted replicas were known and all are gone.
  bool Finished() const;

  /// True while something changes soon: a replica starts or drains, a restart waits.
  bool Busy() const;

  void Count(ReplicaCounts& counts) const;
  bool UsesPort(int port) const;

  /// For shutdown: sends SIGTERM to every replica not yet told and hands over the processes,
  /// named for logs. Leaves this object empty.
  std::vector<std::pair<std::string, ReplicaProcess>> TerminateAll();

 private:
  struct Replica;

  bool IsTarget(const Replica& replica) const;
  bool HasTargetReplica(int slot) const;
  int CountReady(const std::string& deployment) const;
  void PollProcesses();
  void ProbeReplicas();
  void Reconcile();
  void SignalDrains();
  void Launch(int slot);
  void RecordCrash(int slot, const std::string& what, const std::vector<std::string>& output);
  void MarkDraining(Replica& replica, const std::string& why);
  DeploymentObservation Observe() const;
  std::string LogPath(const ReplicaIdentity& identity) const;

  const std::string name_;
  const Shared shared_;
  /// The latest Apply; empty while only adopted replicas are known.
  std::optional<DeploymentSpec> spec_;
  common::SpawnOptions launch_;
  bool removing_ = false;
  std::string serving_deployment_;
  int64_t serving_generation_ = 0;
  /// Every replica of every generation, draining ones included.
  std::vector<std::unique_ptr<Replica>> replicas_;
  /// Per slot of the target generation: crash history, and how the last crash went.
  std::map<int, RestartBackoff> backoff_;
  std::map<int, std::string> last_crash_;
  int64_t restarts_ = 0;
  std::optional<DeploymentObservation> last_reported_;
};

}  // namespace eofaas::control
