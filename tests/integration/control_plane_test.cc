// The real eofaas-control binary driven over gRPC: every Provision RPC, the Endpoints stream,
// the replicas it starts (called over HTTP with a file:// cursor) and its metrics.
#include "tests/support/control_plane.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/subprocess.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"

namespace eofaas::tests {
namespace {

namespace fs = std::filesystem;
using namespace eofaas::v1;

class ControlPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto plane = ControlPlane::Start(
        {.data_dir = dir_ / "data",
         .flags = {absl::StrCat("--data_root=", EOFAAS_SOURCE_DIR, "/examples/data"),
                   "--drain_timeout=5s"}});
    ASSERT_TRUE(plane.ok()) << plane.status();
    plane_ = std::move(*plane);
  }

  void TearDown() override {
    if (HasFailure() && plane_) std::cerr << "control plane log:\n" << plane_->Log();
  }

  grpc::Status Create(const Function& function, Function* created = nullptr) {
    CreateFunctionRequest request;
    *request.mutable_function() = function;
    CreateFunctionResponse response;
    grpc::Status status = plane_->provision().CreateFunction(Context().get(), request, &response);
    if (created != nullptr) *created = response.function();
    return status;
  }

  grpc::Status Update(const Function& function, int64_t expected_generation = 0) {
    UpdateFunctionRequest request;
    *request.mutable_function() = function;
    request.set_expected_generation(expected_generation);
    UpdateFunctionResponse response;
    return plane_->provision().UpdateFunction(Context().get(), request, &response);
  }

  grpc::Status Scale(const std::string& name, int min, int max) {
    ScaleFunctionRequest request;
    request.set_name(name);
    request.set_min_replicas(min);
    request.set_max_replicas(max);
    ScaleFunctionResponse response;
    return plane_->provision().ScaleFunction(Context().get(), request, &response);
  }

  grpc::Status Delete(const std::string& name) {
    DeleteFunctionRequest request;
    request.set_name(name);
    DeleteFunctionResponse response;
    return plane_->provision().DeleteFunction(Context().get(), request, &response);
  }

  // The first message of WatchEndpoints: every function's endpoints.
  std::map<std::string, std::vector<Replica>> Endpoints() {
    auto context = Context();
    auto reader = plane_->endpoints().WatchEndpoints(context.get(), WatchEndpointsRequest());
    WatchEndpointsResponse response;
    std::map<std::string, std::vector<Replica>> endpoints;
    if (!reader->Read(&response)) return endpoints;
    EXPECT_TRUE(response.snapshot());
    for (const auto& function : response.functions()) {
      endpoints[function.function()] = {function.replicas().begin(), function.replicas().end()};
    }
    context->TryCancel();
    return endpoints;
  }

  // POST /invoke to a replica with a file:// cursor over an example data file.
  absl::StatusOr<HttpResponse> Invoke(const std::string& address, const std::string& file,
                                      const std::string& args = "{}") {
    std::string body =
        absl::StrCat(R"({"id":"t1","attempt":1,"deadline_ms":5000,"args":)", args,
                     R"(,"cursor":{"uri":"file://)", EOFAAS_SOURCE_DIR, "/examples/data/scenes/",
                     file, R"(","framing":"FRAMING_LINES","offset":"0"}})");
    return HttpRequest(address, "POST", "/invoke", body);
  }

  std::string Metrics() {
    auto response = HttpRequest(plane_->metrics_address(), "GET", "/metrics");
    return response.ok() ? response->body : "";
  }

  TempDir dir_;
  std::unique_ptr<ControlPlane> plane_;
};

TEST_F(ControlPlaneTest, ListTemplatesDescribesPython3) {
  ListTemplatesResponse response;
  ASSERT_TRUE(plane_->provision().ListTemplates(Context().get(), {}, &response).ok());
  auto it = std::find_if(response.templates().begin(), response.templates().end(),
                         [](const Template& t) { return t.name() == "python3"; });
  ASSERT_NE(it, response.templates().end());
  EXPECT_EQ(it->handler_file(), "handler.py");
  EXPECT_EQ(it->handler_signature(), "def handle(data, ctx)");
  EXPECT_FALSE(it->description().empty());
}

TEST_F(ControlPlaneTest, CreateDeploysTheExampleAndItsReplicaAnswersACursor) {
  Function created;
  ASSERT_TRUE(Create(ExampleFunction("linecount"), &created).ok());
  EXPECT_EQ(created.status().generation(), 1);
  EXPECT_EQ(created.status().build_phase(), BUILD_PHASE_PENDING);
  EXPECT_FALSE(created.status().uid().empty());

  auto ready = plane_->WaitReady("linecount");
  ASSERT_TRUE(ready.ok()) << ready.status();
  const auto& status = ready->status();
  EXPECT_EQ(status.build_phase(), BUILD_PHASE_SUCCEEDED);
  EXPECT_EQ(status.observed_generation(), 1);
  EXPECT_EQ(status.ready_replicas(), 1);
  EXPECT_TRUE(absl::StartsWith(status.artifact(), "sha256:")) << status.artifact();
  EXPECT_EQ(status.deployment_name().size(), std::string("linecount-xxxxx").size());
  EXPECT_TRUE(absl::StartsWith(status.deployment_name(), "linecount-"));
  EXPECT_EQ(ready->files().count("handler.py"), 1u);

  auto endpoints = Endpoints();
  ASSERT_EQ(endpoints["linecount"].size(), 1u);
  const Replica& replica = endpoints["linecount"][0];
  EXPECT_EQ(replica.generation(), 1);
  EXPECT_EQ(replica.concurrency(), 8);  // the python3 template's default
  auto health = HttpRequest(replica.address(), "GET", "/healthz");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);

  auto result = Invoke(replica.address(), "2024-03.txt");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->status, 200) << result->body;
  EXPECT_EQ(result->headers.count("x-eofaas-function-error"), 0u) << result->body;
  // 2024-03.txt has 25 lines (header included).
  EXPECT_TRUE(absl::StrContains(result->body, R"("lines":25,)")) << result->body;

  auto filtered = Invoke(replica.address(), "2024-03.txt", R"({"contains":"S2A"})");
  ASSERT_TRUE(filtered.ok());
  EXPECT_FALSE(absl::StrContains(filtered->body, R"("lines":25,)")) << filtered->body;
}

TEST_F(ControlPlaneTest, InvalidInputIsRejectedNamingTheFieldAndLeavesNoTrace) {
  struct Case {
    std::string field;
    std::function<void(Function&)> spoil;
  };
  std::vector<Case> cases = {
      {"function.name", [](Function& f) { f.set_name("Bad_Name"); }},
      {"function.name", [](Function& f) { f.set_name(std::string(41, 'a')); }},
      {"function.template", [](Function& f) { f.set_template_("fortran77"); }},
      {"function.files", [](Function& f) { f.clear_files(); }},
      {"function.files[/abs.py]", [](Function& f) { (*f.mutable_files())["/abs.py"] = "x"; }},
      {"function.files[../up.py]", [](Function& f) { (*f.mutable_files())["../up.py"] = "x"; }},
      {"function.files",
       [](Function& f) { (*f.mutable_files())["big.bin"] = std::string(4 << 20, 'x'); }},
      {"function.env[9LIVES]", [](Function& f) { (*f.mutable_env())["9LIVES"] = "x"; }},
      {"function.scaling.min_replicas",
       [](Function& f) {
         f.mutable_scaling()->set_min_replicas(3);
         f.mutable_scaling()->set_max_replicas(2);
       }},
      {"function.scaling.max_replicas",
       [](Function& f) { f.mutable_scaling()->set_max_replicas(1000); }},
  };
  for (const auto& c : cases) {
    Function function = ExampleFunction("rejected");
    c.spoil(function);
    grpc::Status status = Create(function);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
    EXPECT_TRUE(absl::StrContains(status.error_message(), c.field))
        << c.field << ": " << status.error_message();
  }
  CreateFunctionResponse response;
  EXPECT_EQ(plane_->provision().CreateFunction(Context().get(), {}, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  ListFunctionsResponse list;
  ASSERT_TRUE(plane_->provision().ListFunctions(Context().get(), {}, &list).ok());
  EXPECT_EQ(list.functions_size(), 0);
  fs::path bundles = fs::path(dir_ / "data") / "bundles";
  EXPECT_TRUE(!fs::exists(bundles) || fs::is_empty(bundles));
  GetBuildLogRequest log_request;
  log_request.set_name("rejected");
  auto context = Context();
  auto reader = plane_->provision().GetBuildLog(context.get(), log_request);
  GetBuildLogResponse line;
  EXPECT_FALSE(reader->Read(&line));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ControlPlaneTest, ExistingUnknownAndPreconditionErrors) {
  ASSERT_TRUE(Create(ExampleFunction("dup")).ok());
  EXPECT_EQ(Create(ExampleFunction("dup")).error_code(), grpc::StatusCode::ALREADY_EXISTS);

  GetFunctionRequest get;
  get.set_name("ghost");
  GetFunctionResponse got;
  EXPECT_EQ(plane_->provision().GetFunction(Context().get(), get, &got).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Delete("ghost").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Scale("ghost", 1, 1).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Update(ExampleFunction("ghost")).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Update(ExampleFunction("dup"), 7).error_code(), grpc::StatusCode::ABORTED);
  grpc::Status scale = Scale("dup", 5, 1);
  EXPECT_EQ(scale.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(scale.error_message(), "min_replicas")) << scale.error_message();
  get.set_name("");
  EXPECT_EQ(plane_->provision().GetFunction(Context().get(), get, &got).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ControlPlaneTest, SyntaxErrorFailsTheBuildWithTheCompilersLines) {
  Function function = ExampleFunction("broken");
  (*function.mutable_files())["handler.py"] = "def handle(data ctx):\n    return 1\n";
  ASSERT_TRUE(Create(function).ok());
  auto failed = plane_->WaitFor(
      "broken", [](const Function& f) { return f.status().build_phase() == BUILD_PHASE_FAILED; });
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_EQ(failed->status().deploy_phase(), DEPLOY_PHASE_FAILED);
  EXPECT_TRUE(absl::StrContains(failed->status().message(), "SyntaxError"))
      << failed->status().message();
  std::string log = absl::StrJoin(plane_->BuildLog("broken", 1, true), "\n");
  EXPECT_TRUE(absl::StrContains(log, "SyntaxError")) << log;
  EXPECT_TRUE(absl::StrContains(log, "handler.py")) << log;
  EXPECT_TRUE(absl::StrContains(log, "build failed")) << log;
  EXPECT_TRUE(Endpoints()["broken"].empty());
}

TEST_F(ControlPlaneTest, WatchFunctionStreamsEveryTransitionAndEndsOnDelete) {
  ASSERT_TRUE(Create(ExampleFunction("watched")).ok());
  auto context = Context(absl::Seconds(60));
  WatchFunctionRequest request;
  request.set_name("watched");
  auto reader = plane_->provision().WatchFunction(context.get(), request);
  std::vector<std::string> seen;
  std::vector<int> build_phases;
  WatchFunctionResponse response;
  bool deleted = false;
  while (reader->Read(&response)) {
    const auto& status = response.function().status();
    seen.push_back(absl::StrCat(BuildPhase_Name(status.build_phase()), "/",
                                DeployPhase_Name(status.deploy_phase()), "/",
                                status.ready_replicas(), "/", status.message()));
    build_phases.push_back(status.build_phase());
    EXPECT_TRUE(response.function().files().empty());
    if (status.deploy_phase() == DEPLOY_PHASE_READY && !deleted) {
      deleted = true;
      EXPECT_TRUE(Delete("watched").ok());
    }
  }
  EXPECT_TRUE(reader->Finish().ok());
  std::string joined = absl::StrJoin(seen, " ");
  for (size_t i = 1; i < seen.size(); ++i) {
    EXPECT_NE(seen[i], seen[i - 1]) << "the same change sent twice: " << joined;
  }
  // The snapshot may already be past rendering; from there on the build only moves forward.
  for (size_t i = 1; i < build_phases.size(); ++i) {
    EXPECT_LE(build_phases[i - 1], build_phases[i]) << joined;
  }
  EXPECT_TRUE(absl::StrContains(joined, "BUILD_PHASE_SUCCEEDED/DEPLOY_PHASE_PROGRESSING"))
      << joined;
  EXPECT_TRUE(absl::StrContains(joined, "DEPLOY_PHASE_READY")) << joined;
  EXPECT_TRUE(absl::StrContains(seen.back(), "DEPLOY_PHASE_DELETING")) << joined;
  GetFunctionRequest get;
  get.set_name("watched");
  GetFunctionResponse got;
  EXPECT_EQ(plane_->provision().GetFunction(Context().get(), get, &got).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(ReplicaGroups(plane_->instance()).empty());
}

TEST_F(ControlPlaneTest, UpdateRollsOutANewGenerationAndDrainsTheOld) {
  ASSERT_TRUE(Create(ExampleFunction("rolling")).ok());
  ASSERT_TRUE(plane_->WaitReady("rolling").ok());
  auto before = Endpoints()["rolling"];
  ASSERT_EQ(before.size(), 1u);

  Function next = ExampleFunction("rolling");
  (*next.mutable_files())["handler.py"] = "def handle(data, ctx):\n    return 'generation two'\n";
  (*next.mutable_env())["BAND"] = "B08";
  ASSERT_TRUE(Update(next, 1).ok());
  auto ready = plane_->WaitReady("rolling", 1, 2);
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(ready->status().generation(), 2);
  EXPECT_NE(ready->status().deployment_name(), "");

  auto after = Endpoints()["rolling"];
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].generation(), 2);
  EXPECT_NE(after[0].address(), before[0].address());
  auto result = Invoke(after[0].address(), "2024-04.txt");
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->body, "generation two");
  // The old replica drains and exits: only generation 2 is left.
  for (int i = 0; i < 500 && ReplicaGroups(plane_->instance()).size() != 1; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(ReplicaGroups(plane_->instance()), std::vector<std::string>{"rolling/2"});
  EXPECT_FALSE(HttpRequest(before[0].address(), "GET", "/healthz").ok());
}

TEST_F(ControlPlaneTest, ScaleUpAndDown) {
  ASSERT_TRUE(Create(ExampleFunction("scaled")).ok());
  ASSERT_TRUE(plane_->WaitReady("scaled").ok());
  ASSERT_TRUE(Scale("scaled", 3, 3).ok());
  auto three = plane_->WaitReady("scaled", 3);
  ASSERT_TRUE(three.ok()) << three.status();
  EXPECT_EQ(three->status().desired_replicas(), 3);
  EXPECT_EQ(three->scaling().min_replicas(), 3);
  EXPECT_EQ(Endpoints()["scaled"].size(), 3u);
  EXPECT_EQ(ReplicaGroups(plane_->instance()).size(), 3u);

  ASSERT_TRUE(Scale("scaled", 1, 0).ok());
  auto one = plane_->WaitFor("scaled", [](const Function& f) {
    return f.status().deploy_phase() == DEPLOY_PHASE_READY && f.status().ready_replicas() == 1;
  });
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->scaling().max_replicas(), 1);  // 0 means "same as min"
  for (int i = 0; i < 500 && ReplicaGroups(plane_->instance()).size() != 1; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(ReplicaGroups(plane_->instance()).size(), 1u);
  EXPECT_EQ(Endpoints()["scaled"].size(), 1u);
}

TEST_F(ControlPlaneTest, UpdateAndScaleWhileDeletingAreFailedPrecondition) {
  Function slow = ExampleFunction("draining");
  (*slow.mutable_files())["handler.py"] =
      "import time\n\ndef handle(data, ctx):\n    time.sleep(3)\n    return 'done'\n";
  ASSERT_TRUE(Create(slow).ok());
  ASSERT_TRUE(plane_->WaitReady("draining").ok());
  std::string address = Endpoints()["draining"].at(0).address();
  // An invocation in flight keeps the replica draining for a while after Delete.
  std::thread in_flight([&] {
    auto result = HttpRequest(address, "POST", "/invoke", "{}");
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->status, 200);
    EXPECT_EQ(result->body, "done");
  });
  absl::SleepFor(absl::Milliseconds(1000));  // at the replica by now; two seconds still to go
  ASSERT_TRUE(Delete("draining").ok());
  EXPECT_EQ(Update(slow).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Scale("draining", 2, 2).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(Delete("draining").ok());  // idempotent while deleting
  in_flight.join();
  EXPECT_TRUE(plane_->WaitGone("draining").ok());
  EXPECT_TRUE(ReplicaGroups(plane_->instance()).empty());
}

TEST_F(ControlPlaneTest, ListFunctionsPagesInNameOrder) {
  for (const char* name : {"c-fn", "a-fn", "b-fn"}) ASSERT_TRUE(Create(ExampleFunction(name)).ok());
  ListFunctionsRequest request;
  request.set_page_size(2);
  ListFunctionsResponse first;
  ASSERT_TRUE(plane_->provision().ListFunctions(Context().get(), request, &first).ok());
  ASSERT_EQ(first.functions_size(), 2);
  EXPECT_EQ(first.functions(0).name(), "a-fn");
  EXPECT_EQ(first.functions(1).name(), "b-fn");
  EXPECT_TRUE(first.functions(0).files().empty());
  ASSERT_FALSE(first.next_page_token().empty());
  request.set_page_token(first.next_page_token());
  ListFunctionsResponse second;
  ASSERT_TRUE(plane_->provision().ListFunctions(Context().get(), request, &second).ok());
  ASSERT_EQ(second.functions_size(), 1);
  EXPECT_EQ(second.functions(0).name(), "c-fn");
  EXPECT_TRUE(second.next_page_token().empty());

  request.set_page_token("not a token!");
  EXPECT_EQ(plane_->provision().ListFunctions(Context().get(), request, &second).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  request.set_page_token("");
  request.set_page_size(-1);
  EXPECT_EQ(plane_->provision().ListFunctions(Context().get(), request, &second).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ControlPlaneTest, BuildLogOfTheCurrentGenerationAndUnknownGenerations) {
  ASSERT_TRUE(Create(ExampleFunction("logged")).ok());
  std::string log = absl::StrJoin(plane_->BuildLog("logged", 0, true), "\n");
  EXPECT_TRUE(absl::StrContains(log, "py_compile")) << log;
  EXPECT_TRUE(absl::StrContains(log, "build succeeded")) << log;
  GetBuildLogRequest request;
  request.set_name("logged");
  request.set_generation(9);
  auto context = Context();
  auto reader = plane_->provision().GetBuildLog(context.get(), request);
  GetBuildLogResponse line;
  EXPECT_FALSE(reader->Read(&line));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ControlPlaneTest, MetricsCountRpcsBuildsPhasesAndReplicas) {
  ASSERT_TRUE(Create(ExampleFunction("measured")).ok());
  ASSERT_TRUE(plane_->WaitReady("measured").ok());
  EXPECT_EQ(Create(ExampleFunction("measured")).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  std::string metrics = Metrics();
  for (
      const char* expected : {
          R"(grpc_server_started_total{grpc_method="CreateFunction",grpc_service="eofaas.v1.Provision",grpc_type="unary"} 2)",
          R"(grpc_server_handled_total{grpc_code="OK",grpc_method="CreateFunction",grpc_service="eofaas.v1.Provision",grpc_type="unary"} 1)",
          R"(grpc_server_handled_total{grpc_code="AlreadyExists",grpc_method="CreateFunction",grpc_service="eofaas.v1.Provision",grpc_type="unary"} 1)",
          R"(grpc_server_handled_total{grpc_code="OK",grpc_method="ScaleFunction",grpc_service="eofaas.v1.Provision",grpc_type="unary"} 0)",
          R"(grpc_server_handling_seconds_count{grpc_method="CreateFunction",grpc_service="eofaas.v1.Provision",grpc_type="unary"} 2)",
          R"(eofaas_builds_total{result="succeeded",template="python3"} 1)",
          R"(eofaas_builds_total{result="failed",template="python3"} 0)",
          R"(eofaas_functions{deploy_phase="ready"} 1)",
          R"(eofaas_functions{deploy_phase="failed"} 0)",
          R"(eofaas_replicas{state="ready"} 1)",
          "eofaas_build_duration_seconds_count 1",
          "eofaas_replica_restarts_total 0",
      }) {
    EXPECT_TRUE(absl::StrContains(metrics, expected)) << expected << "\n" << metrics;
  }
}

TEST_F(ControlPlaneTest, SigtermStopsGracefullyAndDrainsReplicas) {
  ASSERT_TRUE(Create(ExampleFunction("stopping")).ok());
  ASSERT_TRUE(plane_->WaitReady("stopping").ok());
  ASSERT_EQ(ReplicaGroups(plane_->instance()).size(), 1u);
  int status = plane_->Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_TRUE(ReplicaGroups(plane_->instance()).empty());
}

// Watch streams never end by themselves (a proxy's endpoint watch, a client following a
// function): a stopping control plane ends them at once with UNAVAILABLE, rather than cancelling
// them when its 5 s gRPC grace is over, which also held up the drain of its replicas.
TEST_F(ControlPlaneTest, SigtermEndsWatchStreamsAtOnce) {
  // A channel of its own, as a proxy has.
  auto endpoints = eofaas::v1::Endpoints::NewStub(
      grpc::CreateChannel(plane_->grpc_address(), grpc::InsecureChannelCredentials()));
  auto watch_context = Context(absl::Seconds(60));
  auto watch = endpoints->WatchEndpoints(watch_context.get(), WatchEndpointsRequest());
  WatchEndpointsResponse change;
  ASSERT_TRUE(watch->Read(&change));  // the snapshot: the stream is open

  const auto start = std::chrono::steady_clock::now();
  std::future<int> stopped = std::async(std::launch::async, [&] { return plane_->Stop(); });
  while (watch->Read(&change)) {
  }
  const grpc::Status end = watch->Finish();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ(end.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(absl::StrContains(end.error_message(), "shutting down")) << end.error_message();
  const int status = stopped.get();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST_F(ControlPlaneTest, CrashLoopingReplicasMakeTheFunctionDegradedWithTheReason) {
  Function crashing = ExampleFunction("crasher");
  (*crashing.mutable_files())["handler.py"] =
      "raise RuntimeError('band B13 does not exist')\n\ndef handle(data, ctx):\n    return 1\n";
  ASSERT_TRUE(Create(crashing).ok());
  auto degraded = plane_->WaitFor("crasher", [](const Function& f) {
    return f.status().deploy_phase() == DEPLOY_PHASE_DEGRADED;
  });
  ASSERT_TRUE(degraded.ok()) << degraded.status();
  EXPECT_EQ(degraded->status().build_phase(), BUILD_PHASE_SUCCEEDED);
  EXPECT_GE(degraded->status().restarts(), 2);
  EXPECT_TRUE(absl::StrContains(degraded->status().message(), "CrashLoopBackOff"))
      << degraded->status().message();
  EXPECT_TRUE(absl::StrContains(degraded->status().message(), "band B13 does not exist"))
      << degraded->status().message();
  EXPECT_TRUE(Endpoints()["crasher"].empty());
  EXPECT_TRUE(absl::StrContains(Metrics(), "eofaas_functions{deploy_phase=\"degraded\"} 1"));
}

TEST_F(ControlPlaneTest, AFailingRolloutKeepsTheServingGenerationAndItsBundle) {
  ASSERT_TRUE(Create(ExampleFunction("steady")).ok());
  auto first = plane_->WaitReady("steady");
  ASSERT_TRUE(first.ok());
  const std::string serving_artifact = first->status().artifact();
  Function crashing = ExampleFunction("steady");
  (*crashing.mutable_files())["handler.py"] =
      "import os\nos.write(2, b'caf\\xe9 not utf-8\\n')\nos._exit(3)\n";
  ASSERT_TRUE(Update(crashing).ok());
  auto degraded = plane_->WaitFor("steady", [](const Function& f) {
    return f.status().generation() == 2 && f.status().deploy_phase() == DEPLOY_PHASE_DEGRADED;
  });
  ASSERT_TRUE(degraded.ok()) << degraded.status();
  EXPECT_EQ(degraded->status().observed_generation(), 1);
  EXPECT_TRUE(absl::StrContains(degraded->status().message(), "caf\xEF\xBF\xBD not utf-8"))
      << degraded->status().message();
  // A deletion elsewhere collects unused bundles: the serving generation's must stay.
  ASSERT_TRUE(Create(ExampleFunction("other")).ok());
  ASSERT_TRUE(plane_->WaitReady("other").ok());
  ASSERT_TRUE(Delete("other").ok());
  ASSERT_TRUE(plane_->WaitGone("other").ok());
  fs::path bundle = fs::path(dir_ / "data") / "bundles" / serving_artifact.substr(7);
  EXPECT_TRUE(fs::exists(bundle / "function" / "handler.py")) << bundle;
  auto endpoints = Endpoints()["steady"];
  ASSERT_EQ(endpoints.size(), 1u);
  EXPECT_EQ(endpoints[0].generation(), 1);
  auto result = Invoke(endpoints[0].address(), "2024-05.txt");
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(absl::StrContains(result->body, R"("lines":25,)")) << result->body;
}

TEST_F(ControlPlaneTest, EveryTemplatesExampleDeploysAndAnswers) {
  struct Example {
    std::string name, example, template_name, file, framing, args, expected;
  };
  const std::vector<Example> examples = {
      {"py", "python3-linecount", "python3", "scenes/2024-03.txt", "FRAMING_LINES", "{}",
       R"("lines":25,)"},
      {"js", "node20-linecount", "node20", "scenes/2024-03.txt", "FRAMING_LINES", "{}",
       R"("lines":25,)"},
      {"php", "php8-linecount", "php8", "scenes/2024-03.txt", "FRAMING_LINES", "{}",
       R"("lines":25,)"},
      {"sci", "python3-sci-raster-stats", "python3-sci", "rasters/b04.f32", "FRAMING_NONE",
       R"({"dtype":"float32","nodata":-9999})", R"("nodata": 78)"},
  };
  for (const auto& e : examples)
    ASSERT_TRUE(Create(ExampleFunction(e.name, e.example, e.template_name)).ok());
  auto endpoints = [&](const std::string& name) {
    auto ready = plane_->WaitReady(name);
    EXPECT_TRUE(ready.ok()) << ready.status();
    return Endpoints()[name];
  };
  for (const auto& e : examples) {
    auto replicas = endpoints(e.name);
    ASSERT_EQ(replicas.size(), 1u) << e.template_name;
    std::string body =
        absl::StrCat(R"({"id":"e2e","attempt":1,"deadline_ms":5000,"args":)", e.args,
                     R"(,"cursor":{"uri":"file://)", EOFAAS_SOURCE_DIR, "/examples/data/", e.file,
                     R"(","framing":")", e.framing, R"(","offset":"0"}})");
    auto result = HttpRequest(replicas[0].address(), "POST", "/invoke", body);
    ASSERT_TRUE(result.ok()) << e.template_name << ": " << result.status();
    EXPECT_EQ(result->status, 200) << e.template_name << ": " << result->body;
    EXPECT_EQ(result->headers.count("x-eofaas-function-error"), 0u)
        << e.template_name << ": " << result->body;
    EXPECT_TRUE(absl::StrContains(absl::StrReplaceAll(result->body, {{" ", ""}}),
                                  absl::StrReplaceAll(e.expected, {{" ", ""}})))
        << e.template_name << ": " << result->body;
  }
}

TEST(ControlPlaneConfigTest, UnknownConfigKeysAndBadFlagsAreRejected) {
  TempDir dir;
  std::string config = dir.Write("control.yaml", "listen: 127.0.0.1:0\nlisten_port: 7\n");
  common::SpawnOptions options;
  options.argv = {EOFAAS_CONTROL_BINARY, absl::StrCat("--config=", config),
                  absl::StrCat("--data_dir=", dir / "data")};
  auto result = common::Run(options, absl::Seconds(30));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 2) << result->output;
  EXPECT_TRUE(absl::StrContains(result->output, "listen_port")) << result->output;

  for (const auto& [flag, named] : std::vector<std::pair<std::string, std::string>>{
           {"--runtime=kubernetes-next-door", "runtime: "},
           {"--listen=127.0.0.1:99999", "listen: "},
           {"--metrics_listen=127.0.0.1", "metrics_listen: "},
           {"--build_timeout=0s", "build_timeout: "},
           {"--progress_deadline=-5s", "progress_deadline: "},
           {"--drain_timeout=-1s", "drain_timeout: "}}) {
    options.argv = {EOFAAS_CONTROL_BINARY, flag, absl::StrCat("--data_dir=", dir / "data")};
    result = common::Run(options, absl::Seconds(30));
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(result->exit_code, 2) << flag << ": " << result->output;
    EXPECT_TRUE(absl::StrContains(result->output, named)) << flag << ": " << result->output;
  }
}

// A python3 template whose check takes two seconds, so that an update lands mid-build.
class SlowBuildTest : public ControlPlaneTest {
 protected:
  void SetUp() override {
    auto plane = ControlPlane::Start(
        {.data_dir = dir_ / "data", .templates_dir = SlowBuildTemplates(dir_ / "templates")});
    ASSERT_TRUE(plane.ok()) << plane.status();
    plane_ = std::move(*plane);
  }
};

TEST_F(SlowBuildTest, ANewerGenerationCancelsTheRunningBuild) {
  ASSERT_TRUE(Create(ExampleFunction("superseded")).ok());
  auto context = Context(absl::Seconds(60));
  WatchFunctionRequest request;
  request.set_name("superseded");
  auto reader = plane_->provision().WatchFunction(context.get(), request);
  WatchFunctionResponse response;
  std::vector<std::string> seen;
  bool updated = false;
  while (reader->Read(&response)) {
    const auto& status = response.function().status();
    seen.push_back(absl::StrCat(status.generation(), ":", BuildPhase_Name(status.build_phase())));
    if (status.build_phase() == BUILD_PHASE_BUILDING && !updated) {
      updated = true;
      Function next = ExampleFunction("superseded");
      (*next.mutable_files())["handler.py"] += "\n# generation 2\n";
      ASSERT_TRUE(Update(next).ok());
    }
    if (status.generation() == 2 && status.deploy_phase() == DEPLOY_PHASE_READY) break;
  }
  context->TryCancel();
  std::string joined = absl::StrJoin(seen, " ");
  // The function moves to generation 2 in one change: its build log and the metric tell how
  // generation 1's build ended.
  EXPECT_TRUE(absl::StrContains(joined, "1:BUILD_PHASE_BUILDING 2:BUILD_PHASE_PENDING")) << joined;
  EXPECT_TRUE(absl::StrContains(joined, "2:BUILD_PHASE_SUCCEEDED")) << joined;
  std::string log = absl::StrJoin(plane_->BuildLog("superseded", 1, false), "\n");
  EXPECT_TRUE(absl::StrContains(log, "superseded by generation 2")) << log;
  EXPECT_TRUE(absl::StrContains(Metrics(),
                                R"(eofaas_builds_total{result="cancelled",template="python3"} 1)"));
  EXPECT_EQ(ReplicaGroups(plane_->instance()), std::vector<std::string>{"superseded/2"});
}

// One build worker, and a build queue of 4 × max_functions = 8 tasks: updates of a function
// whose build waits in the queue take no more room there, so the latest generation builds.
TEST_F(ControlPlaneTest, UpdatesOfAQueuedBuildTakeOneSlotOfTheQueue) {
  plane_.reset();
  auto plane = ControlPlane::Start({.data_dir = dir_ / "data",
                                    .templates_dir = SlowBuildTemplates(dir_ / "templates"),
                                    .flags = {"--build_workers=1", "--max_functions=2"}});
  ASSERT_TRUE(plane.ok()) << plane.status();
  plane_ = std::move(*plane);
  ASSERT_TRUE(Create(ExampleFunction("busy")).ok());  // holds the only worker for two seconds
  ASSERT_TRUE(Create(ExampleFunction("queued")).ok());
  for (int generation = 2; generation <= 12; ++generation) {
    Function next = ExampleFunction("queued");
    (*next.mutable_files())["handler.py"] += absl::StrCat("\n# generation ", generation, "\n");
    ASSERT_TRUE(Update(next).ok()) << generation;
  }
  auto built = plane_->WaitFor("queued", [](const Function& f) {
    return f.status().build_phase() != BUILD_PHASE_PENDING &&
           f.status().build_phase() != BUILD_PHASE_RENDERING &&
           f.status().build_phase() != BUILD_PHASE_BUILDING;
  });
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(built->status().generation(), 12);
  EXPECT_EQ(built->status().build_phase(), BUILD_PHASE_SUCCEEDED) << built->status().message();
}

TEST_F(SlowBuildTest, FollowingABuildEndsWhenTheFunctionIsDeleted) {
  ASSERT_TRUE(Create(ExampleFunction("short-lived")).ok());
  ASSERT_TRUE(plane_
                  ->WaitFor("short-lived",
                            [](const Function& f) {
                              return f.status().build_phase() == BUILD_PHASE_BUILDING;
                            })
                  .ok());
  // A watcher hears the build end CANCELLED before the function is gone.
  auto context = Context(absl::Seconds(60));
  WatchFunctionRequest request;
  request.set_name("short-lived");
  auto reader = plane_->provision().WatchFunction(context.get(), request);
  std::thread deleter([&] {
    absl::SleepFor(absl::Milliseconds(200));
    EXPECT_TRUE(Delete("short-lived").ok());
  });
  std::vector<std::string> lines = plane_->BuildLog("short-lived", 1, true);
  deleter.join();
  bool cancelled_while_deleting = false;
  for (WatchFunctionResponse response; reader->Read(&response);) {
    const auto& status = response.function().status();
    cancelled_while_deleting |= status.deploy_phase() == DEPLOY_PHASE_DELETING &&
                                status.build_phase() == BUILD_PHASE_CANCELLED;
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_TRUE(cancelled_while_deleting);
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines[lines.size() - 2], "cancelled: function deleted") << absl::StrJoin(lines, "\n");
  EXPECT_EQ(lines.back(), "build cancelled") << absl::StrJoin(lines, "\n");
  EXPECT_TRUE(absl::StrContains(Metrics(),
                                R"(eofaas_builds_total{result="cancelled",template="python3"} 1)"));
  // Nothing of the abandoned build is left for a new function of the same name.
  ASSERT_TRUE(plane_->WaitGone("short-lived").ok());
  absl::SleepFor(absl::Seconds(2));  // the abandoned check has finished meanwhile
  ASSERT_TRUE(Create(ExampleFunction("short-lived")).ok());
  ASSERT_TRUE(plane_
                  ->WaitFor("short-lived",
                            [](const Function& f) {
                              return f.status().build_phase() == BUILD_PHASE_BUILDING;
                            })
                  .ok());
  std::vector<std::string> fresh = plane_->BuildLog("short-lived", 1, false);
  ASSERT_FALSE(fresh.empty());
  // The new build is still checking: a "checked" line could only be the abandoned build's.
  EXPECT_FALSE(absl::StrContains(absl::StrJoin(fresh, "\n"), "checked"))
      << absl::StrJoin(fresh, "\n");
}

}  // namespace
}  // namespace eofaas::tests
