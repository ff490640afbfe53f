// KubeDeployer: the Deployer of the Kubernetes runtime. Every function generation is a Deployment
// and a Service (and, when a cluster autoscaler scales it, an HPA) named after the generation
// (DeploymentSpec::deployment_name), applied with server-side apply. What the cluster does with
// them comes back through three informers (Deployments, Pods, EndpointSlices) and is reported as
// DeploymentObservations: rollout progress as `kubectl rollout status` judges it, the ready
// endpoints of the serving generation, and failures that need a change to go away (an image that
// cannot be pulled, a crash loop, a rollout past its progress deadline) as soon as a pod shows
// them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "control/deploy/deployer.h"
#include "control/k8s/client/informer.h"
#include "control/k8s/client/kube_client.h"
#include "control/k8s/render.h"

namespace eofaas::control::k8s {

struct KubeDeployerOptions {
  /// Where the functions' Deployments, Services, HPAs and pods live.
  std::string namespace_name;
  /// Where images are pulled from: a generation runs ImageReference(registry, function, artifact),
  /// the image KubeBuilder pushed for its artifact.
  RegistryConfig registry;
  /// What every function's workload shares: resources, /tmp size, drain timeout, progress
  /// deadline and the HPA's CPU target. The image, run command, environment, concurrency and
  /// replica bounds come from each DeploymentSpec.
  WorkloadSpec workload;
  /// False: the Deployment's spec.replicas is DeploymentSpec::replicas, what the control plane's
  /// autoscaler decided. True: a spec with max_replicas > min_replicas gets an HPA scaling its
  /// Deployment between them on CPU instead.
  bool hpa = false;
  /// How long Start waits for the first lists of the API server (the client's request timeout).
  absl::Duration sync_timeout = absl::Seconds(30);
  /// Waits before a failed request to the API server is made again: doubling from the first to
  /// the second.
  absl::Duration initial_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Seconds(30);
};

/// Deployer running function generations as Deployments in a cluster (see deployer.h for the
/// contract).
///
/// Lifecycle: Create, Start (waits for the first lists, adopts or deletes what a previous control
/// plane left), then Apply and Remove from any thread, and Shutdown (or the destructor).
/// Thread-safe: Apply and Remove only record the change and wake the deployer's worker thread,
/// which makes every request to the API server and calls the observer, with no lock held. The
/// informers' threads only update what the deployer sees and wake the worker.
///
/// Rollouts: a newer generation gets its own Deployment and Service; the older generation keeps
/// serving until the new Deployment's rollout is complete (or the older one has no available
/// replica left), then the older generations' Deployments, Services and HPAs are deleted with
/// foreground propagation. Failed requests are made again after a backoff; one that the API
/// server rejects for good (an invalid object, a forbidden one) is also reported as `failed`.
///
/// Unlike LocalDeployer's, Shutdown deletes nothing: the pods keep serving while the control
/// plane is away, and the next KubeDeployer adopts them.
class KubeDeployer final : public Deployer {
 public:
  /// `client` must outlive the deployer. INVALID_ARGUMENT naming the option for unusable options.
  static absl::StatusOr<std::unique_ptr<KubeDeployer>> Create(KubeClient& client,
                                                              KubeDeployerOptions options);

  ~KubeDeployer() override;
  KubeDeployer(const KubeDeployer&) = delete;
  KubeDeployer& operator=(const KubeDeployer&) = delete;

  /// Starts the informers and waits for their first lists: UNAVAILABLE when they did not come
  /// within sync_timeout. Then every Deployment of eofaas in the namespace is adopted when
  /// `keep(function, name)` says so, its generation read from its eofaas.io/generation
  /// annotation, and deleted (with its Service and HPA) otherwise. Adopted functions are
  /// reported at once, but nothing of them is applied or deleted until an Apply or Remove names
  /// them. FAILED_PRECONDITION when called twice.
  absl::Status Start(Observer observer, Keep keep) override;

  /// Renders the spec's workload (INVALID_ARGUMENT, from RenderWorkload, for an incomplete or
  /// inconsistent spec), then returns: the worker applies it. The same generation with another
  /// replica count or bounds re-applies the same Deployment (scaling, to zero too); when an HPA
  /// takes over its count, the Deployment keeps the count it has until the HPA changes it.
  /// FAILED_PRECONDITION once shut down.
  absl::Status Apply(const DeploymentSpec& spec) override;

  /// Deletes every Deployment, Service and HPA labelled with the function; `removed` is reported
  /// once no Deployment and no pod of it is left in view.
  void Remove(const std::string& function) override;

  /// Idempotent. Stops the worker (after the request it is making, if any) and the informers;
  /// deletes nothing. Changes not yet applied are dropped. The observer is not called once
  /// Shutdown has begun; must not be called from the observer.
  void Shutdown() override;

 private:
  using TimePoint = std::chrono::steady_clock::time_point;
  /// What the informers see, by object name (defined with the .cc's readers of objects).
  struct View;
  /// One function: its latest spec, what is being done about it, and what was last reported.
  struct Function;
  /// One request (or a few) the worker makes to the API server with the lock released.
  struct Task;
  /// The workload of a superseded or unwanted Deployment, to be deleted; stays, done, until the
  /// Deployment has gone from view.
  struct Deletion {
    bool done = false;
    TimePoint retry_at{};
    absl::Duration backoff = absl::ZeroDuration();
  };
  /// The last lines a crash-looping pod printed, read once per restart.
  struct CrashLog {
    int64_t restarts = 0;
    std::string lines;
  };

  KubeDeployer(KubeClient& client, KubeDeployerOptions options);

  /// Handlers of an informer that keep `collection` (of view_) up to date, reading each object
  /// with `read`, and wake the worker.
  template <typename Collection, typename Read>
  Informer::Handlers Follow(Collection View::*collection, Read read);
  /// Adopts what `keep` wants of the Deployments in view and queues the rest for deletion.
  void Adopt(const Keep& keep);
  Function& FunctionNamed(const std::string& name);

  /// The worker: makes the requests the state calls for, then reports what changed.
  void Run();
  /// Brings serving generations up to date and returns the next request due, if any.
  std::optional<Task> NextTaskLocked(TimePoint now);
  absl::Status Execute(Task& task);
  void RecordLocked(const Task& task, const absl::Status& status, TimePoint now);
  /// The observations that changed since they were last reported; forgets removed functions.
  std::vector<DeploymentObservation> ObserveLocked();
  DeploymentObservation ObserveLocked(const Function& function) const;
  /// The Deployment the function's spec targets, or its newest adopted one; empty for none.
  std::string TargetLocked(const Function& function) const;
  /// Makes the target serve once its rollout is complete, or once the serving Deployment has no
  /// available replica left (at first, nothing else serves).
  void UpdateServingLocked(Function& function);
  /// When the worker has to look again although nothing changed: the next retry that is due.
  TimePoint NextRetryLocked(TimePoint now) const;
  /// Before an apply of `deployment` that leaves spec.replicas to an HPA: when the live
  /// Deployment's count was set by our own earlier apply, applies that count (and nothing else)
  /// under the field manager "eofaas-replicas-handover", which then owns it, so that the apply
  /// omitting it does not reset it to 1 (Kubernetes' "Transferring ownership"); the HPA takes it
  /// over from there. Nothing when there is no such Deployment or its count is not ours.
  absl::Status HandOverReplicas(const std::string& deployment);
  /// Paths of the Deployment, Service and HPA named `deployment`, in that order.
  absl::StatusOr<std::vector<std::string>> WorkloadPaths(const std::string& deployment) const;

  KubeClient& client_;
  const KubeDeployerOptions options_;

  std::mutex mu_;
  std::condition_variable wake_;
  bool started_ = false;   // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  /// Something changed since the worker last looked.
  bool dirty_ = false;                                          // guarded by mu_
  std::unique_ptr<View> view_;                                  // guarded by mu_
  std::map<std::string, std::unique_ptr<Function>> functions_;  // guarded by mu_
  std::map<std::string, Deletion> deletions_;   // guarded by mu_, by Deployment name
  std::map<std::string, CrashLog> crash_logs_;  // guarded by mu_, by pod name

  Observer observer_;
  std::unique_ptr<Informer> deployment_informer_;
  std::unique_ptr<Informer> pod_informer_;
  std::unique_ptr<Informer> slice_informer_;
  std::thread worker_;
};

}  // namespace eofaas::control::k8s
