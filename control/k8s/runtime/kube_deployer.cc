#include "control/k8s/runtime/kube_deployer.h"

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/value.hpp>
#include <initializer_list>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/log.h"
#include "control/k8s/names.h"
#include "control/k8s/parts.h"
#include "control/k8s/yaml.h"

namespace eofaas::control::k8s {
namespace {

namespace json = boost::json;
using common::LogInfo;
using common::LogWarning;

// Only the workload of functions: build Jobs' pods carry the same instance label.
constexpr char kWorkloadSelector[] =
    "app.kubernetes.io/managed-by=eofaas,app.kubernetes.io/component=function";
constexpr absl::string_view kInstanceLabel = "app.kubernetes.io/instance";
constexpr absl::string_view kServiceNameLabel = "kubernetes.io/service-name";
// Reasons a container waits for that go away only with a change (of the image, the code, the
// configuration): kubelet would go on retrying them forever.
constexpr absl::string_view kFailureReasons[] = {"ErrImagePull", "ImagePullBackOff",
                                                 "InvalidImageName", "CrashLoopBackOff",
                                                 "CreateContainerConfigError"};
constexpr absl::string_view kCrashLoop = "CrashLoopBackOff";
// Lines of a crash-looping container's log repeated in the failure's reason.
constexpr int kCrashLogLines = 5;
// How long the worker sleeps when nothing is due: it is woken for every change anyway.
constexpr std::chrono::hours kIdle{1};
// The field manager that keeps a Deployment's spec.replicas while it passes to an HPA.
constexpr char kReplicasHandover[] = "eofaas-replicas-handover";

// The value at `path` inside `object`, or nullptr.
const json::value* At(const json::object& object, std::initializer_list<absl::string_view> path) {
  const json::object* current = &object;
  const json::value* value = nullptr;
  for (absl::string_view key : path) {
    if (current == nullptr) return nullptr;
    value = current->if_contains(json::string_view(key.data(), key.size()));
    if (value == nullptr) return nullptr;
    current = value->if_object();
  }
  return value;
}

std::string StringAt(const json::object& object, std::initializer_list<absl::string_view> path) {
  const json::value* value = At(object, path);
  return value != nullptr && value->is_string() ? std::string(value->get_string()) : "";
}

// The integer at `path`; the API server leaves zero counts out, so a missing one is 0.
int64_t IntAt(const json::object& object, std::initializer_list<absl::string_view> path,
              int64_t missing = 0) {
  const json::value* value = At(object, path);
  if (value == nullptr) return missing;
  if (value->is_int64()) return value->get_int64();
  if (value->is_uint64()) return static_cast<int64_t>(value->get_uint64());
  if (value->is_double()) return static_cast<int64_t>(value->get_double());
  return missing;
}

// The objects in the array at `path`; none when there is no array.
std::vector<const json::object*> ObjectsAt(const json::object& object,
                                           std::initializer_list<absl::string_view> path) {
  std::vector<const json::object*> objects;
  const json::value* array = At(object, path);
  if (array == nullptr || !array->is_array()) return objects;
  for (const json::value& item : array->get_array()) {
    if (item.is_object()) objects.push_back(&item.get_object());
  }
  return objects;
}

std::string Name(const json::object& object) { return StringAt(object, {"metadata", "name"}); }

// Whether `manager`'s last server-side apply of `deployment` set its spec.replicas, as its
// metadata.managedFields say.
bool AppliedReplicas(const json::object& deployment, absl::string_view manager) {
  for (const json::object* entry : ObjectsAt(deployment, {"metadata", "managedFields"})) {
    if (StringAt(*entry, {"manager"}) == manager && StringAt(*entry, {"operation"}) == "Apply" &&
        At(*entry, {"fieldsV1", "f:spec", "f:replicas"}) != nullptr) {
      return true;
    }
  }
  return false;
}

// What the deployer keeps of one Deployment of eofaas.
struct DeploymentView {
  std::string function;
  int64_t generation = 0;
  /// spec.replicas (1 when unset, as the API server defaults it).
  int replicas = 1;
  int available = 0;
  /// EOFAAS_CONCURRENCY of its pods: what each of its endpoints accepts.
  int concurrency = 1;
  /// The rollout of its current spec is complete, as `kubectl rollout status` judges it.
  bool complete = false;
  /// Set when its Progressing condition says ProgressDeadlineExceeded: the condition's message.
  std::string deadline_exceeded;
  /// Being deleted (metadata.deletionTimestamp).
  bool terminating = false;
};

DeploymentView ReadDeployment(const json::object& object) {
  DeploymentView deployment;
  deployment.function = StringAt(object, {"metadata", "labels", kFunctionLabel});
  (void)absl::SimpleAtoi(StringAt(object, {"metadata", "annotations", kGenerationAnnotation}),
                         &deployment.generation);
  deployment.terminating = At(object, {"metadata", "deletionTimestamp"}) != nullptr;
  deployment.replicas = static_cast<int>(IntAt(object, {"spec", "replicas"}, 1));
  deployment.available = static_cast<int>(IntAt(object, {"status", "availableReplicas"}));
  for (const json::object* container :
       ObjectsAt(object, {"spec", "template", "spec", "containers"})) {
    for (const json::object* var : ObjectsAt(*container, {"env"})) {
      if (StringAt(*var, {"name"}) == "EOFAAS_CONCURRENCY") {
        (void)absl::SimpleAtoi(StringAt(*var, {"value"}), &deployment.concurrency);
      }
    }
  }
  for (const json::object* condition : ObjectsAt(object, {"status", "conditions"})) {
    if (StringAt(*condition, {"type"}) == "Progressing" &&
        StringAt(*condition, {"reason"}) == "ProgressDeadlineExceeded") {
      const std::string message = StringAt(*condition, {"message"});
      deployment.deadline_exceeded = message.empty() ? "ProgressDeadlineExceeded" : message;
    }
  }
  // kubectl's rule: the controller has seen the current spec, every replica is updated and
  // available, and no old one is left.
  const int64_t updated = IntAt(object, {"status", "updatedReplicas"});
  deployment.complete = IntAt(object, {"status", "observedGeneration"}) >=
                            IntAt(object, {"metadata", "generation"}) &&
                        deployment.deadline_exceeded.empty() && updated >= deployment.replicas &&
                        IntAt(object, {"status", "replicas"}) <= updated &&
                        deployment.available >= updated;
  return deployment;
}

// What the deployer keeps of one pod of a function.
struct PodView {
  std::string function;
  /// The Deployment it belongs to.
  std::string deployment;
  /// Neither being deleted nor finished (an evicted pod stays, Failed).
  bool live = true;
  int64_t restarts = 0;
  /// The first container waiting for one of kFailureReasons: the reason and kubelet's message.
  std::string failure_reason;
  std::string failure_message;
};

PodView ReadPod(const json::object& object) {
  PodView pod;
  pod.function = StringAt(object, {"metadata", "labels", kFunctionLabel});
  pod.deployment = StringAt(object, {"metadata", "labels", kInstanceLabel});
  const std::string phase = StringAt(object, {"status", "phase"});
  pod.live = At(object, {"metadata", "deletionTimestamp"}) == nullptr && phase != "Succeeded" &&
             phase != "Failed";
  for (const json::object* status : ObjectsAt(object, {"status", "containerStatuses"})) {
    pod.restarts += IntAt(*status, {"restartCount"});
    const std::string reason = StringAt(*status, {"state", "waiting", "reason"});
    if (pod.failure_reason.empty() &&
        std::find(std::begin(kFailureReasons), std::end(kFailureReasons), reason) !=
            std::end(kFailureReasons)) {
      pod.failure_reason = reason;
      pod.failure_message = StringAt(*status, {"state", "waiting", "message"});
    }
  }
  return pod;
}

// The ready endpoints of one EndpointSlice.
struct SliceView {
  std::string service;
  /// "ip:port", IPv6 addresses in brackets.
  std::vector<std::string> ready_addresses;
};

SliceView ReadSlice(const json::object& object) {
  SliceView slice;
  slice.service = StringAt(object, {"metadata", "labels", kServiceNameLabel});
  // Our Services name their port http; the first one will do for a slice that names none.
  const std::vector<const json::object*> ports = ObjectsAt(object, {"ports"});
  const auto http = std::find_if(ports.begin(), ports.end(), [](const json::object* port) {
    return StringAt(*port, {"name"}) == "http";
  });
  const json::object* port = http != ports.end() ? *http : ports.empty() ? nullptr : ports[0];
  const int64_t number = port != nullptr ? IntAt(*port, {"port"}) : 0;
  if (number == 0) return slice;
  const bool ipv6 = StringAt(object, {"addressType"}) == "IPv6";
  for (const json::object* endpoint : ObjectsAt(object, {"endpoints"})) {
    // An unknown readiness counts as ready, as the API documents.
    const json::value* ready = At(*endpoint, {"conditions", "ready"});
    if (ready != nullptr && !(ready->is_bool() && ready->get_bool())) continue;
    const json::value* addresses = endpoint->if_contains("addresses");
    if (addresses == nullptr || !addresses->is_array() || addresses->get_array().empty() ||
        !addresses->get_array()[0].is_string()) {
      continue;
    }
    // Every address of an endpoint reaches the same pod: the first one will do.
    const json::string& address = addresses->get_array()[0].get_string();
    const absl::string_view ip(address.data(), address.size());
    slice.ready_addresses.push_back(ipv6 ? absl::StrCat("[", ip, "]:", number)
                                         : absl::StrCat(ip, ":", number));
  }
  return slice;
}

// A request that may succeed when made again unchanged.
bool Transient(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status) || absl::IsAborted(status);
}

std::chrono::nanoseconds Chrono(absl::Duration duration) {
  return absl::ToChronoNanoseconds(duration);
}

// One informer's objects, as read, and whether its first list has come.
template <typename T>
struct Followed {
  std::map<std::string, T> items;
  bool listed = false;
};

}  // namespace

struct KubeDeployer::View {
  Followed<DeploymentView> deployments;
  Followed<PodView> pods;
  Followed<SliceView> slices;
};

struct KubeDeployer::Function {
  std::string name;
  /// The latest Apply and its workload, rendered (and as YAML, to tell a repeated Apply);
  /// empty while the function is only adopted.
  std::optional<DeploymentSpec> spec;
  std::vector<YAML::Node> objects;
  std::string rendered;
  /// Counts Applies and Removes: a request's result counts only for the change it was made for.
  uint64_t change = 0;
  /// The objects of the latest Apply are applied.
  bool applied = false;
  /// The rendered workload has an HPA; the target Deployment is known to have none.
  bool has_hpa = false;
  bool hpa_absent = false;
  /// Why the API server rejected the latest Apply, when that was not transient.
  std::string apply_failure;
  bool removing = false;
  /// Every Deployment, Service and HPA of the function was deleted.
  bool remove_done = false;
  /// The Deployment whose endpoints are published, and its generation.
  std::string serving;
  int64_t serving_generation = 0;
  /// A failed Apply or Remove is made again at retry_at.
  TimePoint retry_at{};
  absl::Duration backoff = absl::ZeroDuration();
  std::optional<DeploymentObservation> reported;
};

struct KubeDeployer::Task {
  enum class Kind {
    /// Applies `objects` of `function`'s Deployment `name`, and deletes its HPA if `delete_hpa`.
    kApply,
    /// Deletes every Deployment, Service and HPA labelled with `function`.
    kRemove,
    /// Deletes the Deployment, Service and HPA `name`.
    kDelete,
    /// Reads the last lines of pod `name`'s log into `log`.
    kReadLog,
  };
  Kind kind = Kind::kApply;
  std::string function;
  uint64_t change = 0;
  std::string name;
  std::vector<YAML::Node> objects;
  bool delete_hpa = false;
  int64_t restarts = 0;
  std::string log;
};

absl::StatusOr<std::unique_ptr<KubeDeployer>> KubeDeployer::Create(KubeClient& client,
                                                                   KubeDeployerOptions options) {
  if (absl::StatusOr<std::string> path =
          CollectionPath("apps/v1", "Deployment", options.namespace_name);
      !path.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("namespace_name: ", path.status().message()));
  }
  if (options.registry.server.empty()) {
    return absl::InvalidArgumentError("registry.server: required");
  }
  if (options.sync_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("sync_timeout: must be positive");
  }
  if (options.initial_backoff <= absl::ZeroDuration() ||
      options.max_backoff < options.initial_backoff) {
    return absl::InvalidArgumentError("initial_backoff: must be positive and at most max_backoff");
  }
  return std::unique_ptr<KubeDeployer>(new KubeDeployer(client, std::move(options)));
}

KubeDeployer::KubeDeployer(KubeClient& client, KubeDeployerOptions options)
    : client_(client), options_(std::move(options)), view_(std::make_unique<View>()) {}

KubeDeployer::~KubeDeployer() { Shutdown(); }

template <typename Collection, typename Read>
Informer::Handlers KubeDeployer::Follow(Collection View::*collection, Read read) {
  return {.on_list =
              [this, collection, read](const ObjectList& list) {
                {
                  std::lock_guard lock(mu_);
                  Collection& known = (*view_).*collection;
                  known.items.clear();
                  for (const json::object& item : list.items) known.items[Name(item)] = read(item);
                  known.listed = true;
                  dirty_ = true;
                }
                wake_.notify_all();
              },
          .on_event =
              [this, collection, read](const WatchEvent& event) {
                {
                  std::lock_guard lock(mu_);
                  Collection& known = (*view_).*collection;
                  if (event.type == WatchEventType::kDeleted) {
                    known.items.erase(Name(event.object));
                  } else {
                    known.items[Name(event.object)] = read(event.object);
                  }
                  dirty_ = true;
                }
                wake_.notify_all();
              }};
}

absl::Status KubeDeployer::Start(Observer observer, Keep keep) {
  {
    std::lock_guard lock(mu_);
    if (started_ || stopping_) {
      return absl::FailedPreconditionError("Kubernetes deployer already started or stopped");
    }
    started_ = true;
  }
  observer_ = std::move(observer);
  const std::string& ns = options_.namespace_name;
  deployment_informer_ =
      std::make_unique<Informer>(client_, *CollectionPath("apps/v1", "Deployment", ns),
                                 Follow(&View::deployments, ReadDeployment),
                                 InformerOptions{.selector = {.labels = kWorkloadSelector}});
  pod_informer_ = std::make_unique<Informer>(
      client_, *CollectionPath("v1", "Pod", ns), Follow(&View::pods, ReadPod),
      InformerOptions{.selector = {.labels = kWorkloadSelector}});
  // EndpointSlices carry the labels of the EndpointSlice controller, not ours: all are followed,
  // and those of our Services picked by their service-name label.
  slice_informer_ = std::make_unique<Informer>(
      client_, *CollectionPath("discovery.k8s.io/v1", "EndpointSlice", ns),
      Follow(&View::slices, ReadSlice));
  deployment_informer_->Start();
  pod_informer_->Start();
  slice_informer_->Start();
  bool listed = false;
  {
    std::unique_lock lock(mu_);
    listed = wake_.wait_for(lock, Chrono(options_.sync_timeout), [this] {
      return view_->deployments.listed && view_->pods.listed && view_->slices.listed;
    });
  }
  if (!listed) {
    deployment_informer_->Stop();
    pod_informer_->Stop();
    slice_informer_->Stop();
    return absl::UnavailableError(
        absl::StrCat("the Kubernetes API server did not list the namespace ", ns, " within ",
                     absl::FormatDuration(options_.sync_timeout)));
  }
  Adopt(keep);
  std::lock_guard lock(mu_);
  worker_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void KubeDeployer::Adopt(const Keep& keep) {
  std::vector<std::pair<std::string, DeploymentView>> found;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, deployment] : view_->deployments.items) {
      // One being deleted goes anyway.
      if (!deployment.terminating) found.emplace_back(name, deployment);
    }
  }
  // `keep` takes the caller's lock: it is called without ours.
  std::vector<bool> wanted;
  for (const auto& [name, deployment] : found) wanted.push_back(keep(deployment.function, name));
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < found.size(); ++i) {
    const auto& [name, deployment] = found[i];
    if (wanted[i]) {
      LogInfo("function ", deployment.function, ": adopted Deployment ", name, " (generation ",
              deployment.generation, ")");
      FunctionNamed(deployment.function);
    } else {
      LogInfo("deleting Deployment ", name, " of function ", deployment.function,
              ": no longer wanted");
      deletions_.try_emplace(name);
    }
  }
  dirty_ = true;
}

KubeDeployer::Function& KubeDeployer::FunctionNamed(const std::string& name) {
  std::unique_ptr<Function>& function = functions_[name];
  if (!function) {
    function = std::make_unique<Function>();
    function->name = name;
  }
  return *function;
}

absl::Status KubeDeployer::Apply(const DeploymentSpec& spec) {
  if (spec.function.empty()) return absl::InvalidArgumentError("spec.function is empty");
  if (spec.generation <= 0) return absl::InvalidArgumentError("spec.generation must be positive");
  if (spec.replicas < 0) return absl::InvalidArgumentError("spec.replicas must not be negative");
  const FunctionGeneration generation{.namespace_name = options_.namespace_name,
                                      .function = spec.function,
                                      .uid = spec.uid,
                                      .generation = spec.generation,
                                      .deployment_name = spec.deployment_name,
                                      .template_name = spec.template_name};
  WorkloadSpec workload = options_.workload;
  workload.image = ImageReference(options_.registry, spec.function, spec.artifact);
  workload.run = spec.command;
  workload.env = spec.env;
  workload.concurrency = spec.concurrency;
  const bool hpa = options_.hpa && spec.max_replicas > spec.min_replicas;
  workload.min_replicas = hpa ? spec.min_replicas : spec.replicas;
  workload.max_replicas = hpa ? spec.max_replicas : spec.replicas;
  absl::StatusOr<std::vector<YAML::Node>> objects =
      RenderWorkload(generation, workload, options_.registry);
  if (!objects.ok()) return objects.status();
  const bool has_hpa = std::any_of(objects->begin(), objects->end(), [](const YAML::Node& object) {
    return object["kind"].Scalar() == "HorizontalPodAutoscaler";
  });
  if (!has_hpa) {
    // RenderWorkload runs at least one replica; the control plane's autoscaler may want none.
    for (YAML::Node& object : *objects) {
      if (object["kind"].Scalar() == "Deployment") object["spec"]["replicas"] = spec.replicas;
    }
  }
  std::string rendered = ToYaml(*objects);
  {
    std::lock_guard lock(mu_);
    if (stopping_) return absl::FailedPreconditionError("Kubernetes deployer is shut down");
    Function& function = FunctionNamed(spec.function);
    if (function.rendered == rendered && !function.removing) return absl::OkStatus();
    if (!function.spec || function.spec->deployment_name != spec.deployment_name) {
      function.hpa_absent = false;
    }
    function.spec = spec;
    function.objects = *std::move(objects);
    function.has_hpa = has_hpa;
    function.rendered = std::move(rendered);
    ++function.change;
    function.applied = false;
    function.apply_failure.clear();
    function.removing = false;
    function.remove_done = false;
    function.retry_at = {};
    function.backoff = absl::ZeroDuration();
    dirty_ = true;
  }
  wake_.notify_all();
  return absl::OkStatus();
}

void KubeDeployer::Remove(const std::string& function_name) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    Function& function = FunctionNamed(function_name);
    ++function.change;
    function.rendered.clear();
    function.removing = true;
    function.remove_done = false;
    function.retry_at = {};
    function.backoff = absl::ZeroDuration();
    dirty_ = true;
  }
  wake_.notify_all();
}

void KubeDeployer::Shutdown() {
  std::thread worker;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    worker = std::move(worker_);
  }
  wake_.notify_all();
  if (worker.joinable()) worker.join();
  for (Informer* informer :
       {deployment_informer_.get(), pod_informer_.get(), slice_informer_.get()}) {
    if (informer != nullptr) informer->Stop();
  }
}

void KubeDeployer::Run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    dirty_ = false;
    while (std::optional<Task> task = NextTaskLocked(std::chrono::steady_clock::now())) {
      lock.unlock();
      const absl::Status status = Execute(*task);
      lock.lock();
      if (stopping_) return;
      RecordLocked(*task, status, std::chrono::steady_clock::now());
    }
    for (const DeploymentObservation& observation : ObserveLocked()) {
      lock.unlock();
      observer_(observation);
      lock.lock();
      if (stopping_) return;
    }
    const TimePoint now = std::chrono::steady_clock::now();
    wake_.wait_until(lock, NextRetryLocked(now), [this] { return dirty_ || stopping_; });
  }
}

std::string KubeDeployer::TargetLocked(const Function& function) const {
  if (function.spec) return function.spec->deployment_name;
  std::string newest;
  int64_t newest_generation = 0;
  for (const auto& [name, deployment] : view_->deployments.items) {
    if (deployment.function == function.name && !deployment.terminating &&
        deployment.generation > newest_generation) {
      newest = name;
      newest_generation = deployment.generation;
    }
  }
  return newest;
}

void KubeDeployer::UpdateServingLocked(Function& function) {
  const auto& deployments = view_->deployments.items;
  const auto live = [&](const std::string& name) -> const DeploymentView* {
    const auto found = deployments.find(name);
    return found == deployments.end() || found->second.terminating ? nullptr : &found->second;
  };
  // At first, or once the serving Deployment is gone: the newest complete one serves.
  if (live(function.serving) == nullptr) {
    function.serving.clear();
    int64_t newest = 0;
    for (const auto& [name, deployment] : deployments) {
      if (deployment.function == function.name && !deployment.terminating && deployment.complete &&
          deployment.generation > newest) {
        function.serving = name;
        newest = deployment.generation;
      }
    }
  }
  const std::string target = TargetLocked(function);
  const DeploymentView* target_view = live(target);
  const DeploymentView* serving_view = live(function.serving);
  if (function.serving != target && ((target_view != nullptr && target_view->complete) ||
                                     serving_view == nullptr || serving_view->available == 0)) {
    if (!function.serving.empty()) {
      LogInfo("function ", function.name, ": Deployment ", target, " serves instead of ",
              function.serving);
    }
    function.serving = target;
  }
  if (function.spec && function.serving == function.spec->deployment_name) {
    function.serving_generation = function.spec->generation;
  } else if (const DeploymentView* serving = live(function.serving)) {
    function.serving_generation = serving->generation;
  } else {
    function.serving_generation = 0;
  }
}

std::optional<KubeDeployer::Task> KubeDeployer::NextTaskLocked(TimePoint now) {
  const auto& deployments = view_->deployments.items;
  const auto& pods = view_->pods.items;
  // What has gone needs nothing more.
  std::erase_if(deletions_, [&](const auto& entry) {
    return entry.second.done && !deployments.contains(entry.first);
  });
  std::erase_if(crash_logs_, [&](const auto& entry) { return !pods.contains(entry.first); });

  for (auto& [name, owned] : functions_) {
    Function& function = *owned;
    if (function.removing) {
      if (!function.remove_done && function.retry_at <= now) {
        return Task{.kind = Task::Kind::kRemove, .function = name, .change = function.change};
      }
      continue;
    }
    UpdateServingLocked(function);
    if (!function.spec) continue;  // adopted: nothing is done until an Apply or a Remove
    const std::string& target = function.spec->deployment_name;
    if (!function.applied) {
      if (function.retry_at > now) continue;
      return Task{.kind = Task::Kind::kApply,
                  .function = name,
                  .change = function.change,
                  .name = target,
                  .objects = function.objects,
                  .delete_hpa = !function.has_hpa && !function.hpa_absent};
    }
    // Once the target serves, every other generation of the function goes.
    if (function.serving == target) {
      for (const auto& [deployment_name, deployment] : deployments) {
        if (deployment.function == name && deployment_name != target &&
            deletions_.try_emplace(deployment_name).second) {
          LogInfo("function ", name, ": deleting Deployment ", deployment_name, " (generation ",
                  deployment.generation, "), superseded by ", target);
        }
      }
    }
    for (const auto& [pod_name, pod] : pods) {
      if (pod.deployment != target || pod.failure_reason != kCrashLoop) continue;
      const auto log = crash_logs_.find(pod_name);
      if (log == crash_logs_.end() || log->second.restarts != pod.restarts) {
        return Task{.kind = Task::Kind::kReadLog, .name = pod_name, .restarts = pod.restarts};
      }
    }
  }
  for (const auto& [name, deletion] : deletions_) {
    if (!deletion.done && deletion.retry_at <= now) {
      return Task{.kind = Task::Kind::kDelete, .name = name};
    }
  }
  return std::nullopt;
}

absl::StatusOr<std::vector<std::string>> KubeDeployer::WorkloadPaths(
    const std::string& deployment) const {
  std::vector<std::string> paths;
  for (const auto& [api_version, kind] :
       {std::pair{"apps/v1", "Deployment"}, std::pair{"v1", "Service"},
        std::pair{"autoscaling/v2", "HorizontalPodAutoscaler"}}) {
    absl::StatusOr<std::string> path =
        ObjectPath(api_version, kind, options_.namespace_name, deployment);
    if (!path.ok()) return path.status();
    paths.push_back(*std::move(path));
  }
  return paths;
}

absl::Status KubeDeployer::Execute(Task& task) {
  // Deleting what is not there is done.
  const auto remove = [this](const std::string& path) {
    const absl::Status status = client_.Delete(path);
    if (status.ok() || absl::IsNotFound(status)) return absl::OkStatus();
    return absl::Status(status.code(), absl::StrCat("deleting ", path, ": ", status.message()));
  };
  switch (task.kind) {
    case Task::Kind::kApply: {
      for (const YAML::Node& object : task.objects) {
        const std::string kind = object["kind"].Scalar();
        if (kind == "Deployment" && !object["spec"]["replicas"]) {
          if (absl::Status status = HandOverReplicas(task.name); !status.ok()) {
            return absl::Status(status.code(), absl::StrCat("handing over spec.replicas of ",
                                                            task.name, ": ", status.message()));
          }
        }
        if (absl::StatusOr<json::object> applied = client_.Apply(object); !applied.ok()) {
          return absl::Status(
              applied.status().code(),
              absl::StrCat("applying ", kind, " ", task.name, ": ", applied.status().message()));
        }
      }
      if (!task.delete_hpa) return absl::OkStatus();
      // An HPA left from an earlier Apply of this generation would go on scaling it.
      absl::StatusOr<std::string> hpa = ObjectPath("autoscaling/v2", "HorizontalPodAutoscaler",
                                                   options_.namespace_name, task.name);
      return hpa.ok() ? remove(*hpa) : hpa.status();
    }
    case Task::Kind::kRemove: {
      const Selector selector{.labels = absl::StrCat(kFunctionLabel, "=",
                                                     SanitizeLabelValue(task.function),
                                                     ",app.kubernetes.io/managed-by=eofaas")};
      for (const auto& [api_version, kind] :
           {std::pair{"apps/v1", "Deployment"}, std::pair{"v1", "Service"},
            std::pair{"autoscaling/v2", "HorizontalPodAutoscaler"}}) {
        const std::string collection = *CollectionPath(api_version, kind, options_.namespace_name);
        absl::StatusOr<ObjectList> list = client_.List(collection, selector);
        if (!list.ok()) return list.status();
        for (const json::object& item : list->items) {
          if (absl::Status status = remove(absl::StrCat(collection, "/", Name(item)));
              !status.ok()) {
            return status;
          }
        }
      }
      return absl::OkStatus();
    }
    case Task::Kind::kDelete: {
      absl::StatusOr<std::vector<std::string>> paths = WorkloadPaths(task.name);
      if (!paths.ok()) return paths.status();
      for (const std::string& path : *paths) {
        if (absl::Status status = remove(path); !status.ok()) return status;
      }
      return absl::OkStatus();
    }
    case Task::Kind::kReadLog: {
      absl::StatusOr<std::string> log =
          client_.PodLog(options_.namespace_name, task.name, kCrashLogLines);
      if (!log.ok()) return log.status();
      task.log = std::string(absl::StripTrailingAsciiWhitespace(*log));
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

absl::Status KubeDeployer::HandOverReplicas(const std::string& deployment) {
  absl::StatusOr<std::string> path =
      ObjectPath("apps/v1", "Deployment", options_.namespace_name, deployment);
  if (!path.ok()) return path.status();
  // Read now rather than from the informers' view, which may not show our latest apply yet.
  absl::StatusOr<json::object> live = client_.Get(*path);
  if (absl::IsNotFound(live.status())) return absl::OkStatus();
  if (!live.ok()) return live.status();
  // Only a count that our own apply set is removed when that apply omits it; one the HPA (or
  // anyone else) has written since is theirs and stays.
  if (!AppliedReplicas(*live, client_.field_manager())) return absl::OkStatus();
  YAML::Node handover;
  handover["apiVersion"] = "apps/v1";
  handover["kind"] = "Deployment";
  handover["metadata"]["name"] = String(deployment);
  handover["metadata"]["namespace"] = String(options_.namespace_name);
  // A precondition: should the count change before this apply (the HPA's first sync), the apply
  // conflicts and is made again with the new one, rather than forcing this one back.
  handover["metadata"]["resourceVersion"] =
      String(StringAt(*live, {"metadata", "resourceVersion"}));
  handover["spec"]["replicas"] = IntAt(*live, {"spec", "replicas"}, 1);
  return client_.Apply(handover, kReplicasHandover).status();
}

void KubeDeployer::RecordLocked(const Task& task, const absl::Status& status, TimePoint now) {
  const auto retry = [&](TimePoint& retry_at, absl::Duration& backoff) {
    backoff = backoff == absl::ZeroDuration() ? options_.initial_backoff
                                              : std::min(backoff * 2, options_.max_backoff);
    retry_at = now + Chrono(backoff);
  };
  if (task.kind == Task::Kind::kDelete) {
    Deletion& deletion = deletions_[task.name];
    if (status.ok()) {
      deletion.done = true;
    } else {
      LogWarning("deleting the workload of Deployment ", task.name, ": ", status.message());
      retry(deletion.retry_at, deletion.backoff);
    }
    return;
  }
  if (task.kind == Task::Kind::kReadLog) {
    if (!status.ok()) LogWarning("reading the log of pod ", task.name, ": ", status.message());
    crash_logs_[task.name] = {.restarts = task.restarts, .lines = task.log};
    return;
  }
  const auto found = functions_.find(task.function);
  if (found == functions_.end() || found->second->change != task.change) return;  // superseded
  Function& function = *found->second;
  if (status.ok()) {
    function.backoff = absl::ZeroDuration();
    if (task.kind == Task::Kind::kRemove) {
      LogInfo("function ", function.name, ": deleted its Deployments, Services and HPAs");
      function.remove_done = true;
      return;
    }
    LogInfo("function ", function.name, ": applied Deployment ", task.name, " (generation ",
            function.spec->generation, ", ", function.spec->replicas, " replicas)");
    function.applied = true;
    function.apply_failure.clear();
    function.hpa_absent = !function.has_hpa;
    return;
  }
  LogWarning("function ", function.name, ": ", status.message());
  if (task.kind == Task::Kind::kApply && !Transient(status)) {
    function.apply_failure = std::string(status.message());
  }
  retry(function.retry_at, function.backoff);
}

std::vector<DeploymentObservation> KubeDeployer::ObserveLocked() {
  std::vector<DeploymentObservation> changed;
  for (auto it = functions_.begin(); it != functions_.end();) {
    Function& function = *it->second;
    DeploymentObservation observation = ObserveLocked(function);
    if (function.reported != observation) {
      function.reported = observation;
      changed.push_back(std::move(observation));
    }
    it = function.reported->removed ? functions_.erase(it) : std::next(it);
  }
  return changed;
}

DeploymentObservation KubeDeployer::ObserveLocked(const Function& function) const {
  DeploymentObservation observation;
  observation.function = function.name;
  const std::string target = TargetLocked(function);
  const auto found = view_->deployments.items.find(target);
  const DeploymentView* deployment =
      found == view_->deployments.items.end() ? nullptr : &found->second;
  observation.target_generation = function.spec           ? function.spec->generation
                                  : deployment != nullptr ? deployment->generation
                                                          : 0;
  observation.serving_generation = function.serving_generation;
  if (!function.removing) {
    observation.desired = function.spec           ? function.spec->replicas
                          : deployment != nullptr ? deployment->replicas
                                                  : 0;
  }
  // A Deployment's pod template never changes within a generation, so its available replicas
  // are the target's ready replicas even while its status is behind a change of spec.replicas.
  if (deployment != nullptr && !deployment->terminating) observation.ready = deployment->available;

  bool pods_left = false;
  const PodView* failing = nullptr;
  std::string failing_name;
  for (const auto& [name, pod] : view_->pods.items) {
    pods_left = pods_left || pod.function == function.name;
    if (pod.deployment != target) continue;
    if (pod.live) ++observation.running;
    observation.restarts += pod.restarts;
    if (failing == nullptr && pod.live && !pod.failure_reason.empty()) {
      failing = &pod;
      failing_name = name;
    }
  }

  if (function.removing) {
    const bool deployments_left =
        std::any_of(view_->deployments.items.begin(), view_->deployments.items.end(),
                    [&](const auto& entry) { return entry.second.function == function.name; });
    observation.removed = function.remove_done && !deployments_left && !pods_left;
    return observation;  // no endpoint of a function being removed is published
  }

  if (!function.apply_failure.empty()) {
    observation.failed = true;
    observation.reason = function.apply_failure;
  } else if (failing != nullptr) {
    observation.failed = true;
    observation.reason = absl::StrCat("pod ", failing_name, ": ", failing->failure_reason, ": ",
                                      failing->failure_message);
    const auto log = crash_logs_.find(failing_name);
    if (failing->failure_reason == kCrashLoop && log != crash_logs_.end() &&
        !log->second.lines.empty()) {
      absl::StrAppend(&observation.reason, "; it printed last:\n", log->second.lines);
    }
  } else if (deployment != nullptr && !deployment->deadline_exceeded.empty()) {
    observation.failed = true;
    observation.reason = absl::StrCat(
        "Deployment ", target, ": ProgressDeadlineExceeded: ", deployment->deadline_exceeded);
  }

  const auto serving = view_->deployments.items.find(function.serving);
  const int concurrency = serving != view_->deployments.items.end() ? serving->second.concurrency
                          : function.spec                           ? function.spec->concurrency
                                                                    : 1;
  std::set<std::string> addresses;  // sorted, and once each across slices
  for (const auto& [name, slice] : view_->slices.items) {
    if (!function.serving.empty() && slice.service == function.serving) {
      addresses.insert(slice.ready_addresses.begin(), slice.ready_addresses.end());
    }
  }
  for (const std::string& address : addresses) {
    observation.endpoints.push_back({address, concurrency, function.serving_generation});
  }
  return observation;
}

KubeDeployer::TimePoint KubeDeployer::NextRetryLocked(TimePoint now) const {
  TimePoint next = now + kIdle;
  for (const auto& [name, function] : functions_) {
    const bool waiting =
        function->removing ? !function->remove_done : function->spec && !function->applied;
    if (waiting) next = std::min(next, function->retry_at);
  }
  for (const auto& [name, deletion] : deletions_) {
    if (!deletion.done) next = std::min(next, deletion.retry_at);
  }
  return next;
}

}  // namespace eofaas::control::k8s
