// The eofaas-control binary with `--runtime=kubernetes`, against a fake API server over real
// HTTPS (its kubeconfig trusts the test CA). The test plays the cluster: the Job controller and
// kubelet of a build (the build pod, its log, the Job's conditions), the Deployment controller
// and kubelet of a rollout (pods, the Deployment's status) and the EndpointSlice controller.
// Through the control plane's own gRPC API it checks what a user sees: build phases and logs,
// READY with the pods' addresses in WatchEndpoints, FAILED fast with the reason, deletion, and
// scaling: the autoscaler's decisions as the Deployment's replicas, or an HPA between the bounds.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <optional>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/names.h"
#include "control/k8s/names.h"
#include "tests/support/control_plane.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/control/k8s/client/fake_api_server.h"
#include "tests/unit/control/k8s/client/test_pki.h"

namespace eofaas::tests {
namespace {

namespace json = boost::json;
using namespace eofaas::v1;

constexpr char kToken[] = "control-token";
constexpr char kNamespace[] = "fns";
constexpr char kRegistry[] = "registry.test:5000";

std::string JobPath(const std::string& name) {
  return absl::StrCat("/apis/batch/v1/namespaces/", kNamespace, "/jobs/", name);
}
std::string PodPath(const std::string& name) {
  return absl::StrCat("/api/v1/namespaces/", kNamespace, "/pods/", name);
}
std::string DeploymentPath(const std::string& name) {
  return absl::StrCat("/apis/apps/v1/namespaces/", kNamespace, "/deployments/", name);
}
std::string ServicePath(const std::string& name) {
  return absl::StrCat("/api/v1/namespaces/", kNamespace, "/services/", name);
}
std::string SlicePath(const std::string& name) {
  return absl::StrCat("/apis/discovery.k8s.io/v1/namespaces/", kNamespace, "/endpointslices/",
                      name);
}

class KubernetesRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestPki> pki = MakeTestPki(dir_.path().string());
    ASSERT_TRUE(pki.ok()) << pki.status();
    server_ = std::make_unique<FakeApiServer>(
        FakeApiServerOptions{.certificate_pem = pki->server_certificate_pem,
                             .key_pem = pki->server_key_pem,
                             .tokens = {kToken}});
    const std::string kubeconfig =
        dir_.Write("kubeconfig", absl::StrCat(R"(apiVersion: v1
kind: Config
current-context: test
contexts:
- name: test
  context: {cluster: fake, user: control}
clusters:
- name: fake
  cluster:
    server: )",
                                              server_->url(), R"(
    certificate-authority-data: )",
                                              absl::Base64Escape(pki->ca_pem), R"(
users:
- name: control
  user: {token: )",
                                              kToken, R"(}
)"));
    dir_.Write("registry/username", "robot\n");
    dir_.Write("registry/password", std::string(kPassword) + "\n");
    kubeconfig_ = kubeconfig;
  }

  // Starts eofaas-control on the fake cluster with `flags` added to the usual ones. A progress
  // deadline of ten minutes: a failure reported within the test's waits is the pods' doing, not
  // the deadline's.
  void StartPlane(std::vector<std::string> flags = {}) {
    std::vector<std::string> all = {
        "--runtime=kubernetes",
        absl::StrCat("--kubeconfig=", kubeconfig_),
        absl::StrCat("--kubernetes_namespace=", kNamespace),
        absl::StrCat("--registry=", kRegistry),
        absl::StrCat("--registry_credentials=", (dir_.path() / "registry").string()),
        "--progress_deadline=10m"};
    all.insert(all.end(), flags.begin(), flags.end());
    auto plane = ControlPlane::Start({.data_dir = (dir_.path() / "data").string(), .flags = all});
    ASSERT_TRUE(plane.ok()) << plane.status();
    plane_ = *std::move(plane);
  }

  void TearDown() override {
    if (HasFailure() && plane_) std::cerr << "control plane log:\n" << plane_->Log();
  }

  Function Create(const std::string& name, int min_replicas = 1, int max_replicas = 1) {
    CreateFunctionRequest request;
    *request.mutable_function() = ExampleFunction(name);
    request.mutable_function()->mutable_scaling()->set_min_replicas(min_replicas);
    request.mutable_function()->mutable_scaling()->set_max_replicas(max_replicas);
    request.mutable_function()->mutable_scaling()->set_target_concurrency(1);
    CreateFunctionResponse response;
    grpc::Status status = plane_->provision().CreateFunction(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.function();
  }

  // Waits (30 s at most) until the API server holds an object at `path`.
  std::optional<json::object> WaitForObject(const std::string& path) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < give_up) {
      if (std::optional<json::object> object = server_->Object(path)) return object;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "no object at " << path;
    return std::nullopt;
  }

  // Waits (30 s at most) until the API server holds no object at `path`.
  bool WaitForNoObject(const std::string& path) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < give_up) {
      if (!server_->Object(path)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // The Job controller and kubelet: the build pod runs, prints `log`, and the Job ends with
  // condition Complete, or Failed for a `failure_reason`.
  void FinishBuild(const std::string& job, const std::string& log,
                   const std::string& failure_reason = "") {
    ASSERT_TRUE(WaitForObject(JobPath(job)));
    const std::string pod = job + "-x7k2p";
    server_->Store(
        PodPath(pod),
        json::parse(absl::StrCat(R"({"apiVersion":"v1","kind":"Pod",
        "metadata":{"labels":{"job-name":")",
                                 job, R"("}},
        "status":{"phase":")",
                                 failure_reason.empty() ? "Succeeded" : "Failed", R"("}})"))
            .as_object());
    server_->SetLog(PodPath(pod), log);
    json::object stored = *server_->Object(JobPath(job));
    stored["status"] = json::parse(
        failure_reason.empty()
            ? R"({"succeeded":1,"conditions":[{"type":"Complete","status":"True"}]})"
            : absl::StrCat(R"({"failed":2,"conditions":[{"type":"Failed","status":"True",
                "reason":")",
                           failure_reason,
                           R"(","message":"Job has reached the specified backoff limit"}]})"));
    server_->Store(JobPath(job), std::move(stored));
  }

  // A pod of `deployment`, labelled as its pod template says, running and ready or waiting with
  // `waiting_reason`.
  void StorePod(const std::string& function, const std::string& deployment, const std::string& pod,
                const std::string& waiting_reason = "") {
    const std::string state =
        waiting_reason.empty()
            ? R"({"running":{"startedAt":"2026-11-28T00:00:00Z"}})"
            : absl::StrCat(
                  R"({"waiting":{"reason":")", waiting_reason,
                  R"(","message":"Back-off pulling image \"registry.test:5000/eofaas/x\""}})");
    server_->Store(
        PodPath(pod),
        json::parse(
            absl::StrCat(
                R"({"apiVersion":"v1","kind":"Pod",
        "metadata":{"labels":{"eofaas.io/function":")",
                function, R"(","app.kubernetes.io/instance":")", deployment,
                R"(","app.kubernetes.io/component":"function","app.kubernetes.io/managed-by":"eofaas"}},
        "status":{"phase":")",
                waiting_reason.empty() ? "Running" : "Pending",
                R"(","containerStatuses":[{"name":"function",
          "ready":)",
                waiting_reason.empty() ? "true" : "false", R"(,"restartCount":0,"state":)", state,
                "}]}}"))
            .as_object());
  }

  // The Deployment controller: every replica updated and available.
  void CompleteRollout(const std::string& deployment, int replicas) {
    json::object stored = *server_->Object(DeploymentPath(deployment));
    const int64_t generation = stored["metadata"].as_object()["generation"].to_number<int64_t>();
    stored["status"] = json::parse(
        absl::StrCat(R"({"observedGeneration":)", generation, R"(,"replicas":)", replicas,
                     R"(,"updatedReplicas":)", replicas, R"(,"readyReplicas":)", replicas,
                     R"(,"availableReplicas":)", replicas,
                     R"(,"conditions":[{"type":"Available","status":"True"},
            {"type":"Progressing","status":"True","reason":"NewReplicaSetAvailable"}]})"));
    server_->Store(DeploymentPath(deployment), std::move(stored));
  }

  // The EndpointSlice controller: the Service's endpoints, ready or not.
  void StoreSlice(const std::string& deployment,
                  const std::vector<std::pair<std::string, bool>>& endpoints) {
    std::vector<std::string> entries;
    for (const auto& [ip, ready] : endpoints) {
      entries.push_back(absl::StrCat(R"({"addresses":[")", ip, R"("],"conditions":{"ready":)",
                                     ready ? "true" : "false", "}}"));
    }
    server_->Store(SlicePath(deployment + "-abcde"),
                   json::parse(absl::StrCat(R"({"apiVersion":"discovery.k8s.io/v1",
        "kind":"EndpointSlice","addressType":"IPv4",
        "metadata":{"labels":{"kubernetes.io/service-name":")",
                                            deployment, R"("}},
        "ports":[{"name":"http","port":8080,"protocol":"TCP"}],
        "endpoints":[)",
                                            absl::StrJoin(entries, ","), "]}"))
                       .as_object());
  }

  // The replica addresses WatchEndpoints' first message gives `function`.
  std::vector<std::string> Addresses(const std::string& function) {
    auto context = Context();
    auto reader = plane_->endpoints().WatchEndpoints(context.get(), WatchEndpointsRequest());
    WatchEndpointsResponse response;
    std::vector<std::string> addresses;
    if (reader->Read(&response)) {
      for (const auto& entry : response.functions()) {
        if (entry.function() != function) continue;
        for (const auto& replica : entry.replicas()) addresses.push_back(replica.address());
      }
    }
    context->TryCancel();
    return addresses;
  }

  // Waits (30 s at most) until the Deployment's spec.replicas is `replicas`.
  bool WaitForReplicas(const std::string& deployment, int64_t replicas) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < give_up) {
      std::optional<json::object> object = server_->Object(DeploymentPath(deployment));
      if (object) {
        const json::value* value = object->at("spec").as_object().if_contains("replicas");
        if (value != nullptr && value->to_number<int64_t>() == replicas) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // Builds and rolls out `name`'s first generation with `replicas` ready pods; its deployment
  // name.
  std::string DeployReady(const Function& created, int replicas = 1) {
    const std::string& name = created.name();
    const std::string deployment =
        common::DeploymentName(name, created.status().uid(), created.status().generation());
    FinishBuild(control::k8s::RoleName(deployment, "build"), "#9 pushing layers done\n");
    EXPECT_TRUE(WaitForObject(DeploymentPath(deployment)));
    std::vector<std::pair<std::string, bool>> endpoints;
    for (int i = 0; i < replicas; ++i) {
      StorePod(name, deployment, absl::StrCat(deployment, "-5d8f-pod", i));
      endpoints.emplace_back(absl::StrCat("10.1.0.", 10 + i), true);
    }
    CompleteRollout(deployment, replicas);
    StoreSlice(deployment, endpoints);
    absl::StatusOr<Function> ready = plane_->WaitReady(name);
    EXPECT_TRUE(ready.ok()) << ready.status();
    return deployment;
  }

  static constexpr char kPassword[] = "s3cret-registry-password";

  std::string kubeconfig_;
  TempDir dir_;
  std::unique_ptr<FakeApiServer> server_;
  std::unique_ptr<ControlPlane> plane_;
};

TEST_F(KubernetesRuntimeTest, CreateBuildsInAJobRollsOutAndPublishesTheReadyPods) {
  ASSERT_NO_FATAL_FAILURE(StartPlane());
  const Function created = Create("ndvi");
  const std::string deployment =
      common::DeploymentName("ndvi", created.status().uid(), created.status().generation());
  const std::string job = control::k8s::RoleName(deployment, "build");

  FinishBuild(job, "#1 [internal] load build definition from Dockerfile\n#9 pushing layers done\n");
  std::optional<json::object> applied = WaitForObject(DeploymentPath(deployment));
  ASSERT_TRUE(applied);
  const std::string image = json::serialize(*applied);
  EXPECT_TRUE(absl::StrContains(image, absl::StrCat(kRegistry, "/eofaas/ndvi:sha256-")));
  // The Service is applied after the Deployment, in the same task.
  EXPECT_TRUE(WaitForObject(ServicePath(deployment)));
  EXPECT_TRUE(
      server_->Object(absl::StrCat("/api/v1/namespaces/", kNamespace, "/secrets/eofaas-registry")));
  // The build is over: its Job and context ConfigMap are gone, its log is kept.
  EXPECT_TRUE(WaitForNoObject(JobPath(job)));
  EXPECT_TRUE(
      WaitForNoObject(absl::StrCat("/api/v1/namespaces/", kNamespace, "/configmaps/", job)));

  StorePod("ndvi", deployment, deployment + "-5d8f-aaaaa");
  CompleteRollout(deployment, 1);
  StoreSlice(deployment, {{"10.1.0.7", true}, {"10.1.0.8", false}});
  absl::StatusOr<Function> ready = plane_->WaitReady("ndvi");
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(ready->status().deployment_name(), deployment);
  EXPECT_EQ(Addresses("ndvi"), std::vector<std::string>{"10.1.0.7:8080"});

  const std::vector<std::string> log = plane_->BuildLog("ndvi", 1);
  EXPECT_TRUE(std::find(log.begin(), log.end(), "#9 pushing layers done") != log.end())
      << absl::StrJoin(log, "\n");
  // The registry password went into the Secret only: never into the build log or a status.
  for (const std::string& line : log) EXPECT_FALSE(absl::StrContains(line, kPassword)) << line;
  EXPECT_FALSE(absl::StrContains(plane_->Log(), kPassword));

  DeleteFunctionRequest request;
  request.set_name("ndvi");
  DeleteFunctionResponse response;
  ASSERT_TRUE(plane_->provision().DeleteFunction(Context().get(), request, &response).ok());
  EXPECT_TRUE(WaitForNoObject(DeploymentPath(deployment)));
  EXPECT_TRUE(WaitForNoObject(ServicePath(deployment)));
  // The kubelet stops the pod; then the function is gone.
  server_->Erase(PodPath(deployment + "-5d8f-aaaaa"));
  EXPECT_TRUE(plane_->WaitGone("ndvi").ok());
}

TEST_F(KubernetesRuntimeTest, AnImageThatCannotBePulledFailsTheFunctionWithinSeconds) {
  ASSERT_NO_FATAL_FAILURE(StartPlane());
  const Function created = Create("pull");
  const std::string deployment =
      common::DeploymentName("pull", created.status().uid(), created.status().generation());
  FinishBuild(control::k8s::RoleName(deployment, "build"), "#9 pushing layers done\n");
  ASSERT_TRUE(WaitForObject(DeploymentPath(deployment)));

  const auto start = std::chrono::steady_clock::now();
  StorePod("pull", deployment, deployment + "-5d8f-ccccc", "ImagePullBackOff");
  absl::StatusOr<Function> failed = plane_->WaitFor(
      "pull", [](const Function& f) { return f.status().deploy_phase() == DEPLOY_PHASE_FAILED; });
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  EXPECT_TRUE(absl::StrContains(failed->status().message(), "ImagePullBackOff"))
      << failed->status().message();
  EXPECT_TRUE(absl::StrContains(failed->status().message(), deployment + "-5d8f-ccccc"))
      << failed->status().message();
}

TEST_F(KubernetesRuntimeTest, AFailedBuildJobFailsTheBuildWithThePodsLog) {
  ASSERT_NO_FATAL_FAILURE(StartPlane());
  const Function created = Create("broken");
  const std::string deployment =
      common::DeploymentName("broken", created.status().uid(), created.status().generation());
  FinishBuild(control::k8s::RoleName(deployment, "build"),
              "#7 [3/3] RUN python3 -m py_compile handler.py\n"
              "#7 ERROR: SyntaxError: invalid syntax (handler.py, line 3)\n",
              "BackoffLimitExceeded");
  absl::StatusOr<Function> failed = plane_->WaitFor(
      "broken", [](const Function& f) { return f.status().build_phase() == BUILD_PHASE_FAILED; });
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_TRUE(absl::StrContains(failed->status().message(), "BackoffLimitExceeded"))
      << failed->status().message();
  EXPECT_TRUE(absl::StrContains(failed->status().message(), "SyntaxError"))
      << failed->status().message();
  const std::vector<std::string> log = plane_->BuildLog("broken", 1);
  EXPECT_TRUE(std::find(log.begin(), log.end(),
                        "#7 ERROR: SyntaxError: invalid syntax (handler.py, line 3)") != log.end())
      << absl::StrJoin(log, "\n");
  EXPECT_FALSE(server_->Object(DeploymentPath(deployment)));
}

TEST_F(KubernetesRuntimeTest, TheAutoscalersDecisionsAreTheDeploymentsReplicas) {
  ASSERT_NO_FATAL_FAILURE(
      StartPlane({"--autoscale_stable_window=3s", "--autoscale_panic_window=1s"}));
  const std::string deployment = DeployReady(Create("busy", 1, 4));
  ASSERT_FALSE(HasFailure());
  EXPECT_TRUE(WaitForReplicas(deployment, 1));

  // A proxy reports four calls in flight for a function with one replica of concurrency 1.
  auto context = Context(absl::Seconds(60));
  ReportLoadResponse response;
  auto writer = plane_->endpoints().ReportLoad(context.get(), &response);
  ReportLoadRequest report;
  report.set_proxy("proxy-a");
  FunctionLoad* load = report.add_functions();
  load->set_function("busy");
  load->set_in_flight(4);
  ASSERT_TRUE(writer->Write(report));
  EXPECT_TRUE(WaitForReplicas(deployment, 4))
      << json::serialize(*server_->Object(DeploymentPath(deployment)));
  // The load is gone: after the stable window the Deployment goes back to min_replicas.
  report.clear_functions();
  ASSERT_TRUE(writer->Write(report));
  EXPECT_TRUE(WaitForReplicas(deployment, 1))
      << json::serialize(*server_->Object(DeploymentPath(deployment)));
  writer->WritesDone();
  EXPECT_TRUE(writer->Finish().ok());
  EXPECT_FALSE(server_->Object(absl::StrCat("/apis/autoscaling/v2/namespaces/", kNamespace,
                                            "/horizontalpodautoscalers/", deployment)));
}

TEST_F(KubernetesRuntimeTest, WithHpaAutoscalingAnHpaScalesBetweenTheBounds) {
  ASSERT_NO_FATAL_FAILURE(StartPlane({"--kubernetes_autoscaling=hpa"}));
  const std::string deployment = DeployReady(Create("elastic", 2, 5), 2);
  ASSERT_FALSE(HasFailure());
  std::optional<json::object> hpa = WaitForObject(absl::StrCat(
      "/apis/autoscaling/v2/namespaces/", kNamespace, "/horizontalpodautoscalers/", deployment));
  ASSERT_TRUE(hpa);
  const json::object& spec = hpa->at("spec").as_object();
  EXPECT_EQ(spec.at("minReplicas").to_number<int64_t>(), 2);
  EXPECT_EQ(spec.at("maxReplicas").to_number<int64_t>(), 5);
  // The HPA sets the replicas: the applied Deployment leaves them out.
  EXPECT_FALSE(
      server_->Object(DeploymentPath(deployment))->at("spec").as_object().contains("replicas"));
}

}  // namespace
}  // namespace eofaas::tests
