// The Kubernetes deployer against the fake API server. The test plays the cluster: the Deployment
// controller (a Deployment's status), the HPA (its replica count), the kubelet (Pods and their
// container statuses) and the EndpointSlice controller (the ready addresses of a Service), and
// checks what the deployer applies, deletes and reports.
#include "control/k8s/runtime/kube_deployer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/names.h"
#include "tests/support/eventually.h"
#include "tests/unit/control/k8s/client/api_server_test.h"

namespace eofaas::control::k8s {
namespace {

namespace json = boost::json;
using std::chrono::seconds;
using tests::Eventually;
using tests::RecordedRequest;

constexpr char kFunction[] = "ndvi";
constexpr char kUid[] = "uid-1";
constexpr char kImage[] = "registry.example.com:5000/eofaas/ndvi:sha256-0123abcd";

std::string Describe(const DeploymentObservation& o) {
  std::vector<std::string> endpoints;
  for (const Endpoint& endpoint : o.endpoints) {
    endpoints.push_back(
        absl::StrCat(endpoint.address, "/", endpoint.concurrency, "/g", endpoint.generation));
  }
  return absl::StrCat(o.function, " target=", o.target_generation,
                      " serving=", o.serving_generation, " desired=", o.desired,
                      " running=", o.running, " ready=", o.ready, " restarts=", o.restarts,
                      " failed=", o.failed, " removed=", o.removed, " reason=", o.reason,
                      " endpoints=[", absl::StrJoin(endpoints, ","), "]");
}

/// What the deployer reported, for the test thread to wait on.
class Observations {
 public:
  void Add(const DeploymentObservation& observation) {
    std::lock_guard lock(mutex_);
    history_[observation.function].push_back(observation);
    added_.notify_all();
  }

  /// Waits until the latest observation of `function` satisfies `done`, and returns it; nothing
  /// when that did not happen within `timeout`.
  std::optional<DeploymentObservation> WaitFor(
      const std::string& function, const std::function<bool(const DeploymentObservation&)>& done,
      std::chrono::milliseconds timeout = seconds(10)) {
    std::unique_lock lock(mutex_);
    const bool satisfied = added_.wait_for(lock, timeout, [&] {
      const auto found = history_.find(function);
      return found != history_.end() && done(found->second.back());
    });
    if (!satisfied) return std::nullopt;
    return history_[function].back();
  }

  /// Forgets everything reported so far.
  void Clear() {
    std::lock_guard lock(mutex_);
    history_.clear();
  }

  std::vector<DeploymentObservation> History(const std::string& function) {
    std::lock_guard lock(mutex_);
    return history_[function];
  }

  /// The latest observation of `function`, described, for failure messages.
  std::string Latest(const std::string& function) {
    std::lock_guard lock(mutex_);
    const auto found = history_.find(function);
    return found == history_.end() ? "(none)" : Describe(found->second.back());
  }

 private:
  std::mutex mutex_;
  std::condition_variable added_;
  std::map<std::string, std::vector<DeploymentObservation>> history_;
};

const json::value* At(const json::object& object, std::initializer_list<std::string_view> path) {
  const json::value* value = nullptr;
  const json::object* current = &object;
  for (std::string_view key : path) {
    if (current == nullptr || (value = current->if_contains(key)) == nullptr) return nullptr;
    current = value->if_object();
  }
  return value;
}

class KubeDeployerTest : public ApiServerTest {
 protected:
  void SetUp() override {
    ApiServerTest::SetUp();
    StartServer();
    client_ = Client(Config());
  }

  static KubeDeployerOptions Options() {
    KubeDeployerOptions options{.namespace_name = kNamespace,
                                .registry = {.server = "registry.example.com:5000"},
                                .sync_timeout = absl::Seconds(10),
                                .initial_backoff = absl::Milliseconds(10),
                                .max_backoff = absl::Milliseconds(100)};
    // Far longer than any wait of these tests: a failure seen comes from a pod's status.
    options.workload.progress_deadline = absl::Minutes(10);
    return options;
  }

  /// Creates and starts a deployer; `keep` defaults to keeping nothing.
  std::unique_ptr<KubeDeployer> StartDeployer(KubeDeployerOptions options = Options(),
                                              Deployer::Keep keep = nullptr) {
    absl::StatusOr<std::unique_ptr<KubeDeployer>> deployer =
        KubeDeployer::Create(*client_, std::move(options));
    EXPECT_TRUE(deployer.ok()) << deployer.status();
    if (!deployer.ok()) return nullptr;
    if (!keep) keep = [](const std::string&, const std::string&) { return false; };
    const absl::Status started =
        (*deployer)->Start([this](const DeploymentObservation& o) { observations_.Add(o); }, keep);
    EXPECT_TRUE(started.ok()) << started;
    return *std::move(deployer);
  }

  static std::string Name(int64_t generation, const std::string& function = kFunction) {
    return common::DeploymentName(function, kUid, generation);
  }

  static DeploymentSpec Spec(int64_t generation, int replicas,
                             const std::string& function = kFunction) {
    return {.function = function,
            .uid = kUid,
            .generation = generation,
            .deployment_name = Name(generation, function),
            .artifact = "sha256:0123abcd",
            .command = {"/usr/bin/python3", "-B", "runtime/server.py"},
            .env = {{"BAND", "4"}},
            .replicas = replicas,
            .concurrency = 4};
  }

  static std::string Path(const std::string& collection, const std::string& name) {
    return absl::StrCat(collection, "/", name);
  }
  static std::string DeploymentPath(const std::string& name) { return Path(kDeployments, name); }
  static std::string ServicePath(const std::string& name) {
    return Path("/api/v1/namespaces/fns/services", name);
  }
  static std::string HpaPath(const std::string& name) {
    return Path("/apis/autoscaling/v2/namespaces/fns/horizontalpodautoscalers", name);
  }
  static std::string PodPath(const std::string& name) {
    return Path("/api/v1/namespaces/fns/pods", name);
  }
  static std::string SlicePath(const std::string& name) {
    return Path("/apis/discovery.k8s.io/v1/namespaces/fns/endpointslices", name);
  }

  bool Exists(const std::string& path) const { return server_->Object(path).has_value(); }

  /// The Deployment's spec.replicas, or -1 when it has none (or there is no Deployment).
  int SpecReplicas(const std::string& name) const {
    const std::optional<json::object> deployment = server_->Object(DeploymentPath(name));
    const json::value* replicas = deployment ? At(*deployment, {"spec", "replicas"}) : nullptr;
    return replicas != nullptr ? static_cast<int>(replicas->to_number<int64_t>()) : -1;
  }

  /// Plays the Deployment controller: writes the status of the Deployment `name` as of its
  /// current spec.
  void SetStatus(const std::string& name, int replicas, int updated, int available,
                 json::array conditions = {}) {
    std::optional<json::object> deployment = server_->Object(DeploymentPath(name));
    ASSERT_TRUE(deployment.has_value()) << name;
    json::object status{{"observedGeneration", *At(*deployment, {"metadata", "generation"})},
                        {"replicas", replicas},
                        {"updatedReplicas", updated},
                        {"readyReplicas", available},
                        {"availableReplicas", available}};
    if (!conditions.empty()) status["conditions"] = std::move(conditions);
    (*deployment)["status"] = std::move(status);
    server_->Store(DeploymentPath(name), std::move(*deployment));
  }

  static json::object Running(int restarts = 0) {
    return {
        {"name", "function"},
        {"ready", true},
        {"restartCount", restarts},
        {"state", json::object{{"running", json::object{{"startedAt", "2025-01-01T00:00:00Z"}}}}}};
  }
  static json::object Waiting(const std::string& reason, const std::string& message,
                              int restarts = 0) {
    return {{"name", "function"},
            {"ready", false},
            {"restartCount", restarts},
            {"state",
             json::object{{"waiting", json::object{{"reason", reason}, {"message", message}}}}}};
  }

  /// Plays the kubelet: a pod of Deployment `deployment` with one container in `container`.
  void StorePod(const std::string& name, const std::string& deployment, json::object container,
                const std::string& function = kFunction) {
    server_->Store(
        PodPath(name),
        json::object{
            {"apiVersion", "v1"},
            {"kind", "Pod"},
            {"metadata",
             json::object{{"labels", json::object{{"eofaas.io/function", function},
                                                  {"app.kubernetes.io/instance", deployment},
                                                  {"app.kubernetes.io/component", "function"},
                                                  {"app.kubernetes.io/managed-by", "eofaas"}}}}},
            {"status", json::object{{"phase", "Running"},
                                    {"containerStatuses", json::array{std::move(container)}}}}});
  }

  /// Plays the EndpointSlice controller: a slice of Service `service` holding `endpoints`
  /// (address → ready).
  void StoreSlice(const std::string& name, const std::string& service,
                  const std::vector<std::pair<std::string, bool>>& endpoints,
                  const std::string& address_type = "IPv4") {
    json::array items;
    for (const auto& [address, ready] : endpoints) {
      items.push_back(json::object{{"addresses", json::array{address.c_str()}},
                                   {"conditions", json::object{{"ready", ready}}}});
    }
    server_->Store(
        SlicePath(name),
        json::object{
            {"apiVersion", "discovery.k8s.io/v1"},
            {"kind", "EndpointSlice"},
            {"metadata",
             json::object{{"labels", json::object{{"kubernetes.io/service-name", service},
                                                  {"endpointslice.kubernetes.io/managed-by",
                                                   "endpointslice-controller.k8s.io"}}}}},
            {"addressType", address_type},
            {"ports", json::array{json::object{{"name", "http"}, {"port", 8080}}}},
            {"endpoints", std::move(items)}});
  }

  /// Applies `spec` and plays a complete rollout of it: `addresses.size()` ready pods, its
  /// status and its EndpointSlice. Returns once the deployer serves it.
  void RollOut(KubeDeployer& deployer, const DeploymentSpec& spec,
               const std::vector<std::string>& addresses) {
    ASSERT_TRUE(deployer.Apply(spec).ok());
    ASSERT_TRUE(Eventually([&] { return SpecReplicas(spec.deployment_name) == spec.replicas; }));
    std::vector<std::pair<std::string, bool>> endpoints;
    for (size_t i = 0; i < addresses.size(); ++i) {
      StorePod(absl::StrCat(spec.deployment_name, "-pod", i), spec.deployment_name, Running());
      endpoints.emplace_back(addresses[i], true);
    }
    const int count = static_cast<int>(addresses.size());
    SetStatus(spec.deployment_name, count, count, count);
    StoreSlice(spec.deployment_name + "-slice", spec.deployment_name, endpoints);
    // Pods, status and slices come through separate watches: the roll-out is whole once the
    // deployer has seen all three.
    ASSERT_TRUE(observations_.WaitFor(spec.function, [&](const DeploymentObservation& o) {
      return o.serving_generation == spec.generation && o.ready == count && o.running == count &&
             static_cast<int>(o.endpoints.size()) == count;
    })) << observations_.Latest(spec.function);
  }

  /// The DELETE requests made for `path`.
  std::vector<RecordedRequest> Deletes(const std::string& path) const {
    std::vector<RecordedRequest> deletes;
    for (const RecordedRequest& request : server_->Requests()) {
      if (request.method == "DELETE" && request.target == path) deletes.push_back(request);
    }
    return deletes;
  }

  /// The PATCH (apply) requests made for `path`.
  int Applies(const std::string& path) const {
    int applies = 0;
    for (const RecordedRequest& request : server_->Requests()) {
      if (request.method == "PATCH" && request.target.starts_with(path + "?")) ++applies;
    }
    return applies;
  }

  /// The applies that handed the spec.replicas of the Deployment at `path` over.
  int HandOvers(const std::string& path) const {
    int handovers = 0;
    for (const RecordedRequest& request : server_->Requests()) {
      if (request.method == "PATCH" &&
          request.target.starts_with(path + "?fieldManager=eofaas-replicas-handover&")) {
        ++handovers;
      }
    }
    return handovers;
  }

  std::unique_ptr<KubeClient> client_;
  Observations observations_;
};

TEST_F(KubeDeployerTest, RollsOutAndPublishesTheReadyEndpoints) {
  auto deployer = StartDeployer();
  const DeploymentSpec spec = Spec(1, 2);
  ASSERT_TRUE(deployer->Apply(spec).ok());

  ASSERT_TRUE(Eventually([&] { return Exists(ServicePath(spec.deployment_name)); }));
  const json::object deployment = *server_->Object(DeploymentPath(spec.deployment_name));
  EXPECT_EQ(SpecReplicas(spec.deployment_name), 2);
  const json::value* containers = At(deployment, {"spec", "template", "spec", "containers"});
  ASSERT_NE(containers, nullptr);
  EXPECT_EQ(At(containers->as_array()[0].as_object(), {"image"})->as_string(), kImage);
  EXPECT_EQ(At(deployment, {"metadata", "annotations", "eofaas.io/generation"})->as_string(), "1");
  EXPECT_EQ(At(deployment, {"metadata", "labels", "eofaas.io/function"})->as_string(), kFunction);

  StorePod(spec.deployment_name + "-a", spec.deployment_name, Running());
  StorePod(spec.deployment_name + "-b", spec.deployment_name, Running(1));
  SetStatus(spec.deployment_name, 2, 2, 2);
  StoreSlice(spec.deployment_name + "-x1", spec.deployment_name,
             {{"10.0.0.2", true}, {"10.0.0.1", true}, {"10.0.0.3", false}});
  // Another Service's slice is not ours.
  StoreSlice("other-x1", "other", {{"10.9.9.9", true}});

  // The informers report the slice, the pods and the status in any order.
  const auto ready = observations_.WaitFor(kFunction, [](const DeploymentObservation& o) {
    return o.endpoints.size() == 2 && o.ready == 2 && o.running == 2 && o.restarts == 1;
  });
  ASSERT_TRUE(ready) << observations_.Latest(kFunction);
  EXPECT_EQ(ready->target_generation, 1);
  EXPECT_EQ(ready->serving_generation, 1);
  EXPECT_EQ(ready->desired, 2);
  EXPECT_FALSE(ready->failed);
  EXPECT_EQ(ready->endpoints,
            (std::vector<Endpoint>{{"10.0.0.1:8080", 4, 1}, {"10.0.0.2:8080", 4, 1}}));
}

TEST_F(KubeDeployerTest, IPv6EndpointsAreBracketed) {
  auto deployer = StartDeployer();
  const DeploymentSpec spec = Spec(1, 1);
  ASSERT_TRUE(deployer->Apply(spec).ok());
  ASSERT_TRUE(Eventually([&] { return SpecReplicas(spec.deployment_name) == 1; }));
  SetStatus(spec.deployment_name, 1, 1, 1);
  StoreSlice(spec.deployment_name + "-x1", spec.deployment_name, {{"fd00::1", true}}, "IPv6");
  const auto ready = observations_.WaitFor(
      kFunction, [](const DeploymentObservation& o) { return !o.endpoints.empty(); });
  ASSERT_TRUE(ready) << observations_.Latest(kFunction);
  EXPECT_EQ(ready->endpoints, (std::vector<Endpoint>{{"[fd00::1]:8080", 4, 1}}));
}

TEST_F(KubeDeployerTest, TheOldGenerationServesUntilTheNewOneIsCompleteThenGoes) {
  auto deployer = StartDeployer();
  RollOut(*deployer, Spec(1, 2), {"10.0.0.1", "10.0.0.2"});
  const std::string old_name = Name(1);
  const std::string new_name = Name(2);

  ASSERT_TRUE(deployer->Apply(Spec(2, 2)).ok());
  ASSERT_TRUE(Eventually([&] { return SpecReplicas(new_name) == 2; }));
  StorePod(new_name + "-a", new_name, Running());
  StorePod(new_name + "-b", new_name, Waiting("ContainerCreating", ""));
  SetStatus(new_name, 2, 2, 1);
  StoreSlice(new_name + "-x1", new_name, {{"10.0.1.1", true}, {"10.0.1.2", false}});
  const auto progressing = observations_.WaitFor(kFunction, [](const DeploymentObservation& o) {
    return o.target_generation == 2 && o.ready == 1;
  });
  ASSERT_TRUE(progressing) << observations_.Latest(kFunction);
  EXPECT_EQ(progressing->serving_generation, 1);
  EXPECT_EQ(progressing->endpoints,
            (std::vector<Endpoint>{{"10.0.0.1:8080", 4, 1}, {"10.0.0.2:8080", 4, 1}}));
  EXPECT_TRUE(Exists(DeploymentPath(old_name)));

  StorePod(new_name + "-b", new_name, Running());
  SetStatus(new_name, 2, 2, 2);
  StoreSlice(new_name + "-x1", new_name, {{"10.0.1.1", true}, {"10.0.1.2", true}});
  const auto switched = observations_.WaitFor(kFunction, [](const DeploymentObservation& o) {
    return o.serving_generation == 2 && o.endpoints.size() == 2;
  });
  ASSERT_TRUE(switched) << observations_.Latest(kFunction);
  EXPECT_EQ(switched->endpoints,
            (std::vector<Endpoint>{{"10.0.1.1:8080", 4, 2}, {"10.0.1.2:8080", 4, 2}}));
  EXPECT_TRUE(Eventually(
      [&] { return !Exists(DeploymentPath(old_name)) && !Exists(ServicePath(old_name)); }));
  EXPECT_TRUE(Exists(DeploymentPath(new_name)));
  EXPECT_TRUE(Exists(ServicePath(new_name)));
}

TEST_F(KubeDeployerTest, AnImageThatCannotBePulledFailsAsSoonAsThePodSaysSo) {
  auto deployer = StartDeployer();
  const DeploymentSpec spec = Spec(1, 1);
  ASSERT_TRUE(deployer->Apply(spec).ok());
  ASSERT_TRUE(Eventually([&] { return SpecReplicas(spec.deployment_name) == 1; }));
  const std::string message = absl::StrCat("Back-off pulling image \"", kImage, "\"");
  StorePod(spec.deployment_name + "-a", spec.deployment_name, Waiting("ImagePullBackOff", message));

  // The Deployment's progress deadline is ten minutes away: the pod's status is what tells.
  const auto failed = observations_.WaitFor(
      kFunction, [](const DeploymentObservation& o) { return o.failed; }, seconds(5));
  ASSERT_TRUE(failed) << observations_.Latest(kFunction);
  EXPECT_EQ(failed->reason,
            absl::StrCat("pod ", spec.deployment_name, "-a: ImagePullBackOff: ", message));
  EXPECT_EQ(failed->running, 1);
  EXPECT_EQ(failed->ready, 0);

  // Pulled after all (the registry came back): the failure is over.
  StorePod(spec.deployment_name + "-a", spec.deployment_name, Running());
  EXPECT_TRUE(observations_.WaitFor(kFunction, [](const DeploymentObservation& o) {
    return !o.failed;
  })) << observations_.Latest(kFunction);
}

TEST_F(KubeDeployerTest, ACrashLoopFailsWithTheLastLinesOfTheLog) {
  auto deployer = StartDeployer();
  const DeploymentSpec spec = Spec(1, 1);
  ASSERT_TRUE(deployer->Apply(spec).ok());
  ASSERT_TRUE(Eventually([&] { return SpecReplicas(spec.deployment_name) == 1; }));
  const std::string pod = spec.deployment_name + "-a";
  StorePod(pod, spec.deployment_name, Running());
  server_->SetLog(PodPath(pod), "loading handler\nImportError: No module named 'rasterio'\n");
  const std::string message =
      absl::StrCat("back-off 40s restarting failed container=function pod=", pod);
  StorePod(pod, spec.deployment_name, Waiting("CrashLoopBackOff", message, 3));

  const auto failed = observations_.WaitFor(
      kFunction, [](const DeploymentObservation& o) { return o.failed; }, seconds(5));
  ASSERT_TRUE(failed) << observations_.Latest(kFunction);
  EXPECT_EQ(failed->reason, absl::StrCat("pod ", pod, ": CrashLoopBackOff: ", message,
                                         "; it printed last:\nloading handler\n"
                                         "ImportError: No module named 'rasterio'"));
  EXPECT_EQ(failed->restarts, 3);
  EXPECT_TRUE(server_->WaitForRequest(absl::StrCat(PodPath(pod), "/log?tailLines=5")));
}

TEST_F(KubeDeployerTest, ARolloutPastItsProgressDeadlineFails) {
  auto deployer = StartDeployer();
  const DeploymentSpec spec = Spec(1, 1);
  ASSERT_TRUE(deployer->Apply(spec).ok());
  ASSERT_TRUE(Eventually([&] { return SpecReplicas(spec.deployment_name) == 1; }));
  const std::string message =
      absl::StrCat("ReplicaSet \"", spec.deployment_name, "-7d9f\" has timed out progressing.");
  SetStatus(spec.deployment_name, 1, 1, 0,
            json::array{json::object{{"type", "Progressing"},
                                     {"status", "False"},
                                     {"reason", "ProgressDeadlineExceeded"},
                                     {"message", message}}});
  const auto failed = observations_.WaitFor(
      kFunction, [](const DeploymentObservation& o) { return o.failed; }, seconds(5));
  ASSERT_TRUE(failed) << observations_.Latest(kFunction);
  EXPECT_EQ(failed->reason, absl::StrCat("Deployment ", spec.deployment_name,
                                         ": ProgressDeadlineExceeded: ", message));
}

TEST_F(KubeDeployerTest, TheSameGenerationWithOtherReplicasScalesItsDeployment) {
  auto deployer = StartDeployer();
  DeploymentSpec spec = Spec(1, 2);
  // Without the hpa option, bounds are ignored: the control plane's count is the Deployment's.
  spec.min_replicas = 1;
  spec.max_replicas = 5;
  ASSERT_TRUE(deployer->Apply(spec).ok());
  // The deletion of a stale HPA comes after every object was applied.
  ASSERT_TRUE(server_->WaitForRequest(HpaPath(spec.deployment_name)));
  EXPECT_EQ(SpecReplicas(spec.deployment_name), 2);
  EXPECT_EQ(Applies(HpaPath(spec.deployment_name)), 0);
  EXPECT_FALSE(Exists(HpaPath(spec.deployment_name)));

  for (const int replicas : {3, 0}) {
    spec.replicas = replicas;
    ASSERT_TRUE(deployer->Apply(spec).ok());
    EXPECT_TRUE(Eventually([&] { return SpecReplicas(spec.deployment_name) == replicas; }))
        << "spec.replicas " << SpecReplicas(spec.deployment_name) << ", wanted " << replicas;
    SetStatus(spec.deployment_name, replicas, replicas, replicas);
    const auto observed = observations_.WaitFor(kFunction, [&](const DeploymentObservation& o) {
      return o.desired == replicas && o.ready == replicas;
    });
    ASSERT_TRUE(observed) << observations_.Latest(kFunction);
    EXPECT_EQ(observed->target_generation, 1);
    EXPECT_EQ(observed->serving_generation, 1);
  }
}

TEST_F(KubeDeployerTest, WithTheHpaOptionAClusterAutoscalerScalesBetweenTheBounds) {
  KubeDeployerOptions options = Options();
  options.hpa = true;
  auto deployer = StartDeployer(options);
  DeploymentSpec spec = Spec(1, 2);
  spec.min_replicas = 1;
  spec.max_replicas = 5;
  ASSERT_TRUE(deployer->Apply(spec).ok());
  ASSERT_TRUE(Eventually([&] { return Exists(HpaPath(spec.deployment_name)); }));
  const json::object hpa = *server_->Object(HpaPath(spec.deployment_name));
  EXPECT_EQ(At(hpa, {"spec", "minReplicas"})->to_number<int64_t>(), 1);
  EXPECT_EQ(At(hpa, {"spec", "maxReplicas"})->to_number<int64_t>(), 5);
  EXPECT_EQ(At(hpa, {"spec", "scaleTargetRef", "name"})->as_string(), spec.deployment_name);
  EXPECT_EQ(SpecReplicas(spec.deployment_name), -1);

  // Fixed again: the HPA goes, and the Deployment gets the count.
  spec.min_replicas = spec.max_replicas = 0;
  spec.replicas = 3;
  ASSERT_TRUE(deployer->Apply(spec).ok());
  EXPECT_TRUE(Eventually([&] {
    return !Exists(HpaPath(spec.deployment_name)) && SpecReplicas(spec.deployment_name) == 3;
  }));
}

TEST_F(KubeDeployerTest, WithTheHpaOptionAFixedCountPassesToTheHpaWithoutLosingAReplica) {
  KubeDeployerOptions options = Options();
  options.hpa = true;
  auto deployer = StartDeployer(options);
  DeploymentSpec spec = Spec(1, 3);
  spec.min_replicas = spec.max_replicas = 3;
  RollOut(*deployer, spec, {"10.0.0.1", "10.0.0.2", "10.0.0.3"});
  const std::string deployment = DeploymentPath(spec.deployment_name);

  // Every spec.replicas the Deployment has from now on (-1: none), with its resourceVersion.
  std::mutex seen_mutex;
  std::vector<std::pair<std::string, int>> seen;
  std::jthread watch([&, name = spec.deployment_name](std::stop_token stop) {
    (void)client_->Watch(
        kDeployments, {}, std::to_string(server_->revision()),
        [&](const WatchEvent& event) {
          if (Meta(event.object, "name") != name) return;
          const json::value* replicas = At(event.object, {"spec", "replicas"});
          std::lock_guard lock(seen_mutex);
          seen.emplace_back(Meta(event.object, "resourceVersion"),
                            replicas != nullptr ? replicas->to_number<int>() : -1);
        },
        stop);
  });

  // The user allows up to 6: the applied Deployment leaves spec.replicas to an HPA, which has
  // not synced yet. Were the count removed, it would fall to the default of 1 until it does.
  spec.max_replicas = 6;
  ASSERT_TRUE(deployer->Apply(spec).ok());
  ASSERT_TRUE(Eventually([&] { return Exists(HpaPath(spec.deployment_name)); }));
  const std::string version = Meta(*server_->Object(deployment), "resourceVersion");
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard lock(seen_mutex);
    return !seen.empty() && seen.back().first == version;
  }));
  {
    std::lock_guard lock(seen_mutex);
    for (const auto& [at, replicas] : seen) {
      EXPECT_EQ(replicas, 3) << "spec.replicas at resourceVersion " << at;
    }
  }

  // Plays the HPA: it scales to 5 and owns the count from then on; a later apply leaves it be.
  json::object scaled = *server_->Object(deployment);
  scaled["spec"].as_object()["replicas"] = 5;
  server_->Store(deployment, std::move(scaled));
  spec.max_replicas = 8;
  ASSERT_TRUE(deployer->Apply(spec).ok());
  ASSERT_TRUE(Eventually([&] {
    const std::optional<json::object> hpa = server_->Object(HpaPath(spec.deployment_name));
    return hpa && At(*hpa, {"spec", "maxReplicas"})->to_number<int>() == 8;
  }));
  EXPECT_EQ(SpecReplicas(spec.deployment_name), 5);
  EXPECT_EQ(HandOvers(deployment), 1);
}

TEST_F(KubeDeployerTest, ARestartedDeployerHandsTheCountOverToTheHpaToo) {
  KubeDeployerOptions options = Options();
  options.hpa = true;
  DeploymentSpec spec = Spec(1, 3);
  spec.min_replicas = spec.max_replicas = 3;
  {
    auto previous = StartDeployer(options);
    RollOut(*previous, spec, {"10.0.0.1", "10.0.0.2", "10.0.0.3"});
  }
  // The new deployer knows nothing of the earlier applies: the Deployment's managedFields tell
  // that spec.replicas is eofaas's.
  auto deployer =
      StartDeployer(options, [](const std::string&, const std::string&) { return true; });
  spec.max_replicas = 6;
  ASSERT_TRUE(deployer->Apply(spec).ok());
  ASSERT_TRUE(Eventually([&] { return Exists(HpaPath(spec.deployment_name)); }));
  EXPECT_EQ(SpecReplicas(spec.deployment_name), 3);
  EXPECT_EQ(HandOvers(DeploymentPath(spec.deployment_name)), 1);
}

TEST_F(KubeDeployerTest, RemoveDeletesInTheForegroundAndReportsOnceThePodsAreGone) {
  auto deployer = StartDeployer();
  const DeploymentSpec spec = Spec(1, 2);
  RollOut(*deployer, spec, {"10.0.0.1", "10.0.0.2"});

  deployer->Remove(kFunction);
  ASSERT_TRUE(Eventually([&] {
    return !Exists(DeploymentPath(spec.deployment_name)) &&
           !Exists(ServicePath(spec.deployment_name));
  }));
  for (const std::string& path :
       {DeploymentPath(spec.deployment_name), ServicePath(spec.deployment_name)}) {
    const std::vector<RecordedRequest> deletes = Deletes(path);
    ASSERT_EQ(deletes.size(), 1u) << path;
    EXPECT_TRUE(absl::StrContains(deletes[0].body, R"("propagationPolicy":"Foreground")"));
  }
  // Nothing is published while the function goes, and its pods are still terminating.
  ASSERT_TRUE(observations_.WaitFor(kFunction, [](const DeploymentObservation& o) {
    return o.desired == 0 && o.ready == 0 && o.endpoints.empty();
  })) << observations_.Latest(kFunction);
  for (const DeploymentObservation& o : observations_.History(kFunction)) {
    EXPECT_FALSE(o.removed) << "removed while its pods are still there";
  }

  server_->Erase(PodPath(spec.deployment_name + "-pod0"));
  server_->Erase(PodPath(spec.deployment_name + "-pod1"));
  EXPECT_TRUE(observations_.WaitFor(kFunction, [](const DeploymentObservation& o) {
    return o.removed;
  })) << observations_.Latest(kFunction);
}

TEST_F(KubeDeployerTest, RemovingAFunctionWithNothingInTheClusterReportsAtOnce) {
  auto deployer = StartDeployer();
  deployer->Remove("unknown");
  EXPECT_TRUE(observations_.WaitFor("unknown", [](const DeploymentObservation& o) {
    return o.removed;
  })) << observations_.Latest("unknown");
}

TEST_F(KubeDeployerTest, StartAdoptsWhatIsWantedAndDeletesTheRest) {
  const std::string kept = Name(1);
  const std::string unwanted = Name(1, "gone");
  {
    auto previous = StartDeployer();
    RollOut(*previous, Spec(1, 2), {"10.0.0.1", "10.0.0.2"});
    ASSERT_TRUE(previous->Apply(Spec(1, 1, "gone")).ok());
    ASSERT_TRUE(Eventually([&] { return Exists(ServicePath(unwanted)); }));
    previous->Shutdown();
  }
  // A control plane going away deletes nothing: the pods keep serving.
  EXPECT_TRUE(Exists(DeploymentPath(kept)));
  EXPECT_TRUE(Exists(ServicePath(kept)));
  EXPECT_TRUE(Exists(DeploymentPath(unwanted)));
  const int applies = Applies(DeploymentPath(kept));

  observations_.Clear();
  std::vector<std::string> asked;
  std::mutex asked_mutex;
  auto deployer =
      StartDeployer(Options(), [&](const std::string& function, const std::string& name) {
        std::lock_guard lock(asked_mutex);
        asked.push_back(absl::StrCat(function, "/", name));
        return function == kFunction && name == kept;
      });
  {
    std::lock_guard lock(asked_mutex);
    std::sort(asked.begin(), asked.end());
    EXPECT_EQ(asked, (std::vector<std::string>{absl::StrCat("gone/", unwanted),
                                               absl::StrCat(kFunction, "/", kept)}));
  }

  // Adopted: reported without an Apply, and left as it is.
  const auto adopted = observations_.WaitFor(
      kFunction, [](const DeploymentObservation& o) { return o.endpoints.size() == 2; });
  ASSERT_TRUE(adopted) << observations_.Latest(kFunction);
  EXPECT_EQ(adopted->target_generation, 1);
  EXPECT_EQ(adopted->serving_generation, 1);
  EXPECT_EQ(adopted->desired, 2);
  EXPECT_EQ(adopted->ready, 2);
  EXPECT_EQ(adopted->running, 2);
  EXPECT_EQ(adopted->endpoints,
            (std::vector<Endpoint>{{"10.0.0.1:8080", 4, 1}, {"10.0.0.2:8080", 4, 1}}));
  // Not wanted: deleted.
  EXPECT_TRUE(Eventually(
      [&] { return !Exists(DeploymentPath(unwanted)) && !Exists(ServicePath(unwanted)); }));
  EXPECT_EQ(Applies(DeploymentPath(kept)), applies);
  EXPECT_TRUE(Exists(DeploymentPath(kept)));
}

TEST_F(KubeDeployerTest, StartFailsWhenTheApiServerDoesNotList) {
  server_->SetTokens({"someone-else"});
  KubeDeployerOptions options = Options();
  options.sync_timeout = absl::Milliseconds(300);
  absl::StatusOr<std::unique_ptr<KubeDeployer>> deployer = KubeDeployer::Create(*client_, options);
  ASSERT_TRUE(deployer.ok()) << deployer.status();
  const absl::Status started =
      (*deployer)->Start([](const DeploymentObservation&) {},
                         [](const std::string&, const std::string&) { return true; });
  EXPECT_TRUE(absl::IsUnavailable(started)) << started;
}

TEST_F(KubeDeployerTest, AnInvalidSpecIsRefusedAtApply) {
  auto deployer = StartDeployer();
  DeploymentSpec spec = Spec(1, 1);
  spec.env["EOFAAS_PORT"] = "9";
  EXPECT_TRUE(absl::IsInvalidArgument(deployer->Apply(spec)));
  spec = Spec(1, 1);
  spec.concurrency = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(deployer->Apply(spec)));
}

}  // namespace
}  // namespace eofaas::control::k8s
