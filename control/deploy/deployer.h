// The Deployer interface: runs the replicas of each function generation and reports what it
// observes. Implementations: LocalDeployer (child processes) and KubeDeployer (a cluster).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace eofaas::control {

/// The desired state of one function: `replicas` copies of one built generation.
struct DeploymentSpec {
  std::string function;
  std::string uid;
  int64_t generation = 0;
  /// RFC 1035 name of this generation's deployment (common::DeploymentName).
  std::string deployment_name;
  /// The template the generation was built from (a label of what a cluster runs).
  std::string template_name;
  /// Content address of the bundle ("sha256:<hex>") and its directory on this machine.
  std::string artifact;
  std::string bundle_dir;
  /// The template's run command; relative paths are relative to the bundle root.
  std::vector<std::string> command;
  /// The user's environment variables.
  std::map<std::string, std::string> env;
  int replicas = 1;
  /// Replica bounds a deployer may hand to a cluster autoscaler: when max_replicas > 0, a
  /// cluster autoscaler (HPA) scales the deployment between them and `replicas` is only its
  /// start. A deployer without one ignores them.
  int min_replicas = 0;
  int max_replicas = 0;
  /// Concurrent invocations each replica accepts.
  int concurrency = 1;
};

/// One ready replica, as published to proxies.
struct Endpoint {
  std::string address;  // host:port
  int concurrency = 1;
  int64_t generation = 0;
  bool operator==(const Endpoint&) const = default;
};

/// What a deployer sees of one function; reported after every change.
struct DeploymentObservation {
  std::string function;
  /// The generation of the latest Apply, and the generation whose replicas are published.
  int64_t target_generation = 0;
  int64_t serving_generation = 0;
  int desired = 0;
  /// Replicas of the target generation: processes alive, and those answering /healthz.
  int running = 0;
  int ready = 0;
  /// Restarts of crashed replicas of the target generation.
  int64_t restarts = 0;
  /// Set when replicas of the target generation keep crashing; `reason` says how they ended and
  /// what they printed last.
  bool crash_looping = false;
  /// Set when the target generation cannot become ready without a change (an image that cannot
  /// be pulled, replicas crashing in a loop on a cluster, a rollout past its progress deadline);
  /// `reason` says which and where.
  bool failed = false;
  std::string reason;
  /// Ready replicas of the serving generation.
  std::vector<Endpoint> endpoints;
  /// After Remove: every replica is gone.
  bool removed = false;
  bool operator==(const DeploymentObservation&) const = default;
};

/// Thread-safe. The observer is called from the deployer's own thread, never under a caller's
/// lock, and must not block for long.
class Deployer {
 public:
  using Observer = std::function<void(const DeploymentObservation&)>;
  /// Whether the replicas of one deployment of `function` are still wanted (see Start).
  using Keep = std::function<bool(const std::string& function, const std::string& deployment_name)>;
  virtual ~Deployer() = default;

  /// Starts supervising. Replicas left running by a previous process of this control plane are
  /// adopted when `keep(function, deployment_name)` says that deployment (the
  /// DeploymentSpec::deployment_name they were started for) is still wanted, and drained
  /// otherwise: SIGTERM, then SIGKILL after the drain timeout. The name, unlike the generation
  /// number, tells a deleted function's leftovers from a re-created function of the same name.
  /// `keep` is called only before Start returns.
  virtual absl::Status Start(Observer observer, Keep keep) = 0;

  /// Makes `spec` the desired state of its function (idempotent). A newer generation is rolled
  /// out: its replicas start, the endpoints switch once `replicas` of them are ready, then the
  /// older replicas drain. The same generation with another replica count scales.
  virtual absl::Status Apply(const DeploymentSpec& spec) = 0;

  /// Drains and stops every replica of `function`; the observer then reports `removed`, at once
  /// when the deployer runs no replica of it.
  virtual void Remove(const std::string& function) = 0;

  /// Drains every replica of every function and waits until they have exited (at most the drain
  /// timeout), then stops supervising.
  virtual void Shutdown() = 0;
};

}  // namespace eofaas::control
