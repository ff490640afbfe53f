// The local Deployer: replicas are process groups on this machine, optionally inside bubblewrap,
// supervised by one thread that starts, probes, restarts, rolls out and drains them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/subprocess.h"
#include "control/deploy/deployer.h"
#include "control/deploy/replica_process.h"
#include "control/deploy/restart_backoff.h"
#include "control/deploy/sandbox.h"

namespace prometheus {
class Counter;
class Gauge;
class Registry;
}  // namespace prometheus

namespace eofaas::control {

class FunctionReplicas;

struct LocalDeployerOptions {
  /// Marks this control plane's replicas (EOFAAS_INSTANCE): a restarted control plane with the same
  /// id adopts them. Required.
  std::string instance_id;
  /// Replica output goes to <log_dir>/<deployment>-<slot>.log. Created when missing. Required.
  std::string log_dir;
  /// Host directories replicas may read (bound read-only at their own path in the sandbox).
  std::vector<std::string> data_roots;
  /// kBwrap requires a working bubblewrap (see BwrapAvailable()).
  SandboxMode sandbox = SandboxMode::kBwrap;
  /// How long a replica may take to finish its work after SIGTERM before it gets SIGKILL.
  std::chrono::milliseconds drain_timeout{10'000};
  /// Budget of one /healthz probe.
  std::chrono::milliseconds probe_timeout{200};
  /// Ready and unready replicas are probed this often (starting ones on every busy tick).
  std::chrono::milliseconds probe_interval{1'000};
  /// Consecutive failed probes that take a ready replica out of the endpoints.
  int unready_after_failures = 3;
  /// Supervision period while something starts, drains or waits to restart, and otherwise.
  std::chrono::milliseconds busy_tick{20};
  std::chrono::milliseconds idle_tick{250};
  RestartBackoffOptions backoff;
};

/// Deployer running replicas as local processes (see deployer.h for the contract).
///
/// Lifecycle: Create, Start (adopts what a previous process left), then Apply/Remove from any
/// thread, and Shutdown (or the destructor) to drain everything. Thread-safe: Apply and Remove
/// only queue the change and wake the supervisor thread, which owns all replica state and calls
/// the observer with no lock held. The observer is not called once Shutdown has begun.
///
/// No replica table is stored anywhere: replicas carry their identity in their environment and
/// Start finds them in /proc.
class LocalDeployer final : public Deployer {
 public:
  /// Errors: INVALID_ARGUMENT for missing options, FAILED_PRECONDITION when the log directory
  /// cannot be created or bubblewrap is requested but does not work, INTERNAL when the metrics
  /// cannot be registered. `clock` must outlive the deployer; metrics go to `registry`.
  static absl::StatusOr<std::unique_ptr<LocalDeployer>> Create(
      LocalDeployerOptions options, const common::Clock& clock,
      std::shared_ptr<prometheus::Registry> registry);

  ~LocalDeployer() override;
  LocalDeployer(const LocalDeployer&) = delete;
  LocalDeployer& operator=(const LocalDeployer&) = delete;

  /// Adopts or drains the replicas of `instance_id` found in /proc (probing the adopted ones
  /// once), then starts the supervisor. Adopted replicas are supervised but neither restarted nor
  /// drained until an Apply or Remove names their function. FAILED_PRECONDITION when called twice.
  absl::Status Start(Observer observer, Keep keep) override;

  /// INVALID_ARGUMENT for an incomplete spec, FAILED_PRECONDITION when the run command cannot be
  /// found or the deployer is shut down.
  absl::Status Apply(const DeploymentSpec& spec) override;
  void Remove(const std::string& function) override;
  /// Idempotent. Blocks until the replicas are gone (at most drain_timeout plus a short wait for
  /// SIGKILL); must not be called from the observer, which runs on the thread it joins.
  void Shutdown() override;

  /// Stops supervising and leaves every replica running, as a crash of the control plane would:
  /// the next LocalDeployer with the same instance_id adopts them. For tests of recovery; same
  /// threading rule as Shutdown.
  void Abandon();

 private:
  /// An Apply (spec set) or a Remove (spec empty), queued for the supervisor.
  struct Change {
    std::string function;
    std::optional<DeploymentSpec> spec;
    common::SpawnOptions launch;
  };
  /// A leftover group no function wants: SIGTERM sent, SIGKILL due at `kill_at`.
  struct Orphan {
    ReplicaProcess process;
    common::Clock::TimePoint kill_at;
    bool kill_sent = false;
  };
  enum class StopMode { kRunning, kShutdown, kAbandon };

  LocalDeployer(LocalDeployerOptions options, const common::Clock& clock,
                std::shared_ptr<prometheus::Registry> registry);

  void Adopt(const Keep& keep);
  /// Sends SIGTERM to a leftover group that no function wants; Tick kills it after the drain
  /// timeout.
  void DrainLeftover(ReplicaProcess process);
  FunctionReplicas& FunctionNamed(const std::string& name);
  void Run();
  /// One supervision pass over every function; returns the observations to report.
  std::vector<DeploymentObservation> Tick();
  absl::StatusOr<int> NewPort() const;
  bool Busy() const;
  void UpdateMetrics();
  void DrainAllAndWait();

  const LocalDeployerOptions options_;
  const common::Clock& clock_;
  const std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Gauge* starting_gauge_ = nullptr;
  prometheus::Gauge* ready_gauge_ = nullptr;
  prometheus::Gauge* unready_gauge_ = nullptr;
  prometheus::Gauge* draining_gauge_ = nullptr;
  prometheus::Gauge* backoff_gauge_ = nullptr;
  prometheus::Counter* restarts_counter_ = nullptr;

  std::mutex mu_;
  std::condition_variable wake_;
  bool started_ = false;                     // guarded by mu_
  StopMode stop_mode_ = StopMode::kRunning;  // guarded by mu_
  std::vector<Change> pending_;              // guarded by mu_
  std::thread thread_;                       // guarded by mu_

  // Owned by the supervisor thread (and by Start before the thread exists).
  Observer observer_;
  std::map<std::string, std::unique_ptr<FunctionReplicas>> functions_;
  /// Groups draining that belong to no function (leftovers found by Start).
  std::vector<Orphan> orphans_;
};

}  // namespace eofaas::control
