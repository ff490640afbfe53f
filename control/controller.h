// The Controller: owns every function's record, runs the build and deploy state machines, and
// publishes each persisted change to watchers. The gRPC services only translate to and from it.
#pragma once

#include <atomic>
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
#include "common/worker_pool.h"
#include "control/autoscale/autoscaler.h"
#include "control/build/build_machine.h"
#include "control/build/builder.h"
#include "control/build/template_catalog.h"
#include "control/deploy/deploy_machine.h"
#include "control/deploy/deployer.h"
#include "control/metrics.h"
#include "control/store/store.h"
#include "control/subscribers.h"
#include "control/validation.h"
#include "eofaas/v1/endpoints.pb.h"
#include "eofaas/v1/function.pb.h"

namespace eofaas::control {

using eofaas::v1::Function;

struct ControllerOptions {
  Limits limits;
  /// Builds running at once.
  int build_workers = 2;
  /// Functions the control plane holds at most (RESOURCE_EXHAUSTED beyond).
  int max_functions = 1000;
  /// How long replicas may take to become ready before the function is DEGRADED.
  std::chrono::milliseconds progress_deadline{60000};
  /// Windows and limits of the autoscaler (validated by Start).
  AutoscalerOptions autoscaler;
  /// The cluster scales functions between min_replicas ≥ 1 and a larger max_replicas (the
  /// deployer gets the bounds and renders an HPA): the autoscaler leaves them alone and decides
  /// only for functions that scale to zero, which an HPA cannot do.
  bool cluster_autoscaling = false;
};

/// A change of one function, as watchers see it.
struct FunctionEvent {
  Function function;  // without files
  bool deleted = false;
};

/// New lines of one generation's build log; `done` once the build has ended.
struct BuildLogEvent {
  std::string function;
  int64_t generation = 0;
  std::vector<std::string> lines;
  bool done = false;
};

struct FunctionPage {
  std::vector<Function> functions;
  std::string next_page_token;
};

/// Thread-safe. Every change is committed to the Store before it is published.
class Controller {
 public:
  Controller(ControllerOptions options, Store& store, const TemplateCatalog& templates,
             Builder& builder, Deployer& deployer, const common::Clock& clock,
             ControlMetrics& metrics);
  ~Controller();

  /// Loads the store, starts the deployer (adopting live replicas) and resumes every function:
  /// unfinished builds run again, deletions complete, built generations are deployed.
  /// INVALID_ARGUMENT when the autoscaler's options do not validate.
  absl::Status Start();
  /// Cancels builds and drains every replica.
  void Shutdown();

  absl::StatusOr<Function> Create(Function function);
  absl::StatusOr<Function> Update(Function function, int64_t expected_generation);
  absl::StatusOr<Function> Get(const std::string& name) const;
  absl::StatusOr<FunctionPage> List(int32_t page_size, const std::string& page_token) const;
  absl::StatusOr<Function> Delete(const std::string& name);
  absl::StatusOr<Function> Scale(const std::string& name, int32_t min_replicas,
                                 int32_t max_replicas);
  std::vector<const Template*> Templates() const { return templates_.All(); }

  /// Calls `sink` with the current state, then with every change, the last one `deleted`.
  /// Returns a subscription id for Unwatch, or NOT_FOUND.
  absl::StatusOr<uint64_t> WatchFunction(const std::string& name,
                                         Subscribers<FunctionEvent>::Sink sink);
  void UnwatchFunction(uint64_t id) { function_events_.Remove(id); }

  /// Calls `sink` with the stored lines of the generation (0: current) and, when `follow` and the
  /// build is still running, with new lines until an event with `done`. Returns a subscription
  /// id (0 when nothing follows), NOT_FOUND or INVALID_ARGUMENT.
  absl::StatusOr<uint64_t> WatchBuildLog(const std::string& name, int64_t generation, bool follow,
                                         Subscribers<BuildLogEvent>::Sink sink);
  void UnwatchBuildLog(uint64_t id) { build_log_events_.Remove(id); }

  /// Calls `sink` with a snapshot of every function's endpoints, then with each change.
  uint64_t WatchEndpoints(Subscribers<eofaas::v1::WatchEndpointsResponse>::Sink sink);
  void UnwatchEndpoints(uint64_t id) { endpoint_events_.Remove(id); }

  /// One proxy's load: in-flight plus queued invocations by function (functions not listed have
  /// none). Feeds the autoscaler; a function at zero replicas with load is scaled up at once.
  void ReportLoad(const std::string& proxy, const std::map<std::string, int64_t>& concurrency);

 private:
  struct Entry;

  // Whether the autoscaler decides `function`'s replica count: between min and max, or down to
  // zero (see ControllerOptions::cluster_autoscaling).
  bool Autoscales(const Function& function) const;
  // The replicas the entry's function wants now: the autoscaler's count when it decides, else
  // its min_replicas (at least 1).
  int DesiredReplicas(const Entry& entry) const;
  // While a function scales to zero, proxies hold its calls rather than fail them when it has
  // no replica.
  static bool ScalesToZero(const Entry& entry);
  Entry* Find(const std::string& name);
  const Entry* Find(const std::string& name) const;
  // NOT_FOUND, FAILED_PRECONDITION (deleting) or UNAVAILABLE (stopping) unless `name` may
  // change; sets `entry`. Caller holds mu_.
  absl::Status FindChangeable(const std::string& name, Entry*& entry);
  // Persists the entry's record, then tells watchers. Caller holds mu_.
  absl::Status Commit(Entry& entry);
  // Recomputes the status from the machines and the latest observation; true when it changed.
  bool Refresh(Entry& entry);
  // Refresh, and Commit when anything changed.
  void Settle(Entry& entry);
  // Queues a build of the entry's current generation, unless one is queued already: a queued
  // build takes the generation that is current when it starts, so superseded generations take
  // no room in the queue.
  void StartBuild(Entry& entry);
  // Builds the current generation of the function `name` created as `uid`.
  void RunBuild(const std::string& name, const std::string& uid);
  // Ends the entry's build in `phase` with `message`, and commits. Caller holds mu_.
  void FinishBuild(Entry& entry, eofaas::v1::BuildPhase phase, const std::string& message);
  // Ends the entry's build in `phase` with `message`: its machine, failure, metric and log; the
  // caller commits. Caller holds mu_.
  void EndBuild(Entry& entry, eofaas::v1::BuildPhase phase, const std::string& message);
  // Stops the entry's unfinished build: it ends CANCELLED, `why` in its log; the caller commits.
  // Caller holds mu_.
  void CancelBuild(Entry& entry, const std::string& why);
  void AppendBuildLogLocked(const std::string& name, int64_t generation,
                            std::vector<std::string> lines, bool done);
  // Hands the deployed revision to the deployer (or records why it cannot be).
  void Deploy(Entry& entry);
  // Asks the autoscaler for the entry's replica count and deploys it when it differs from the
  // one applied. Caller holds mu_.
  void Autoscale(Entry& entry);
  // At start-up: a function the store has at zero replicas (it scales to zero, and no rollout
  // was in progress) stays at zero, rather than waking for a new scale-to-zero grace.
  void ResumeAtZero(Entry& entry);
  // The function as callers see it: the record's, with the autoscaler's latest decision.
  Function View(const Entry& entry) const;
  void OnObservation(const DeploymentObservation& observation);
  void FinishDeleteLocked(const std::string& name);
  void PublishEndpoints(const Entry& entry);
  void CollectGarbageLocked();
  void TickLoop();

  const ControllerOptions options_;
  Store& store_;
  const TemplateCatalog& templates_;
  Builder& builder_;
  Deployer& deployer_;
  const common::Clock& clock_;
  ControlMetrics& metrics_;

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Entry>, std::less<>> entries_;
  std::atomic<int> builds_in_flight_{0};
  Subscribers<FunctionEvent> function_events_;
  Subscribers<BuildLogEvent> build_log_events_;
  Subscribers<eofaas::v1::WatchEndpointsResponse> endpoint_events_;

  std::unique_ptr<Autoscaler> autoscaler_;  // set by Start
  std::unique_ptr<common::WorkerPool> build_pool_;
  // Re-judges deploy phases over time (progress deadlines) even when nothing is observed.
  std::thread ticker_;
  std::condition_variable tick_cv_;
  bool stopping_ = false;
};

}  // namespace eofaas::control
