// KubeBuilder against the fake API server. Each test plays the cluster the way its controllers
// would: once the build Job is applied, a thread creates the Job's pod with a log, then writes the
// Job's final condition.
#include "control/k8s/runtime/kube_builder.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/names.h"
#include "control/k8s/names.h"
#include "tests/unit/control/k8s/client/api_server_test.h"

namespace eofaas::control::k8s {
namespace {

namespace json = boost::json;

constexpr char kRegistry[] = "registry.example.com:5000";
constexpr char kPassword[] = "pa55-w0rd-s3cret";

// How the cluster ends a build Job.
struct JobEnd {
  /// "Complete" or "Failed".
  std::string condition;
  std::string reason;
  std::string message;
  /// The log of the Job's pod.
  std::string log;
};

// What the cluster saw of one build while its Job existed.
struct Seen {
  std::optional<json::object> job;
  std::optional<json::object> config_map;
};

// A JSON string's text, or "" for another value.
std::string Text(const json::value& value) {
  return value.is_string() ? std::string(value.get_string()) : "";
}

// Polls `condition` (every 5 ms, at most 10 s); true once it held.
bool Eventually(const std::function<bool()>& condition) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

class KubeBuilderTest : public ApiServerTest {
 protected:
  void SetUp() override {
    ApiServerTest::SetUp();
    StartServer();
    client_ = Client(Config());
    ASSERT_NE(client_, nullptr);
    dir_.Write("template/Dockerfile", "FROM python:3.11-slim\nCOPY . /app\n");
    dir_.Write("template/server.py", "print('serving')\n");
    tmpl_.name = "python3";
    tmpl_.dir = dir_ / "template";
  }

  std::unique_ptr<KubeBuilder> MakeBuilder(KubeBuilderOptions options = {}) {
    options.namespace_name = kNamespace;
    options.registry.server = kRegistry;
    absl::StatusOr<std::unique_ptr<KubeBuilder>> builder =
        KubeBuilder::Create(*client_, dir_ / "bundles", std::move(options));
    EXPECT_TRUE(builder.ok()) << builder.status();
    return builder.ok() ? *std::move(builder) : nullptr;
  }

  static KubeBuilderOptions Polling(absl::Duration interval) {
    KubeBuilderOptions options;
    options.poll_interval = interval;
    return options;
  }

  static eofaas::v1::Function Function(const std::string& name, int64_t generation,
                                       const std::string& handler = "def handle(d, c):\n  pass\n") {
    eofaas::v1::Function function;
    function.set_name(name);
    function.set_template_("python3");
    (*function.mutable_files())["handler.py"] = handler;
    function.mutable_status()->set_uid("uid-" + name);
    function.mutable_status()->set_generation(generation);
    return function;
  }

  static std::string JobName(const eofaas::v1::Function& function) {
    return RoleName(common::DeploymentName(function.name(), function.status().uid(),
                                           function.status().generation()),
                    "build");
  }
  static std::string JobPath(const std::string& job) {
    return absl::StrCat("/apis/batch/v1/namespaces/fns/jobs/", job);
  }
  static std::string ConfigMapPath(const std::string& job) {
    return absl::StrCat(kConfigMaps, "/", job);
  }
  static std::string PodPath(const std::string& job) {
    return absl::StrCat("/api/v1/namespaces/fns/pods/", job, "-x7k2p");
  }

  BuildLogSink Collect() {
    return [this](std::vector<std::string> lines) {
      log_.insert(log_.end(), lines.begin(), lines.end());
    };
  }
  std::string Log() const { return absl::StrJoin(log_, "\n"); }

  absl::StatusOr<Bundle> Render(KubeBuilder& builder, const eofaas::v1::Function& function) {
    return builder.Render(function, tmpl_, Collect());
  }

  /// The cluster for the build Job `job`: once it is applied, records what was applied, creates
  /// its pod (owned by the Job, labelled as the Job controller labels it) with `end.log`, and
  /// writes the Job's final condition. Join the thread before reading `seen`.
  std::thread RunJob(const std::string& job, JobEnd end, Seen* seen) {
    return std::thread([this, job, end = std::move(end), seen] {
      if (!Eventually([&] { return server_->Object(JobPath(job)).has_value(); })) {
        ADD_FAILURE() << "Job " << job << " was never applied";
        return;
      }
      json::object object = *server_->Object(JobPath(job));
      seen->job = object;
      seen->config_map = server_->Object(ConfigMapPath(job));
      json::object pod = json::parse(R"({"apiVersion": "v1", "kind": "Pod"})").as_object();
      pod["metadata"] = {{"labels", {{"job-name", job}, {"batch.kubernetes.io/job-name", job}}},
                         {"ownerReferences", json::array{{{"apiVersion", "batch/v1"},
                                                          {"kind", "Job"},
                                                          {"name", job},
                                                          {"uid", Meta(object, "uid")},
                                                          {"controller", true}}}}};
      pod["status"] = {{"phase", end.condition == "Complete" ? "Succeeded" : "Failed"}};
      server_->Store(PodPath(job), pod);
      server_->SetLog(PodPath(job), end.log);
      object["status"] = {{"conditions", json::array{{{"type", end.condition},
                                                      {"status", "True"},
                                                      {"reason", end.reason},
                                                      {"message", end.message}}}}};
      server_->Store(JobPath(job), object);
    });
  }

  /// How many apply requests reached a path containing `part`.
  int Applies(const std::string& part) const {
    int count = 0;
    for (const tests::RecordedRequest& request : server_->Requests()) {
      if (request.method == "PATCH" && absl::StrContains(request.target, part)) ++count;
    }
    return count;
  }

  static JobEnd Complete() {
    return {.condition = "Complete",
            .reason = "CompletionsReached",
            .message = "Reached expected number of succeeded pods",
            .log = "#1 load build definition\n#9 pushing layers\n"};
  }

  std::unique_ptr<KubeClient> client_;
  Template tmpl_;
  std::vector<std::string> log_;
  std::atomic<bool> cancel_{false};
};

TEST_F(KubeBuilderTest, SuccessfulBuildPushesTheImageFromTheRenderedJob) {
  std::unique_ptr<KubeBuilder> builder = MakeBuilder(Polling(absl::Milliseconds(20)));
  ASSERT_NE(builder, nullptr);
  const eofaas::v1::Function function = Function("ndvi", 3);
  absl::StatusOr<Bundle> bundle = Render(*builder, function);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_EQ(builder->BundleDir(bundle->artifact), bundle->dir);
  const std::string job = JobName(function);
  const std::string image =
      absl::StrCat(kRegistry, "/eofaas/ndvi:sha256-", bundle->artifact.substr(7));

  Seen seen;
  std::thread cluster = RunJob(job, Complete(), &seen);
  absl::Status status = builder->Build(function, *bundle, tmpl_, Collect(), cancel_);
  cluster.join();
  ASSERT_TRUE(status.ok()) << status << "\n" << Log();

  // The Job as applied: named after the generation, pushing the bundle's image, owned by the
  // control plane's field manager.
  ASSERT_TRUE(seen.job.has_value());
  EXPECT_EQ(Meta(*seen.job, "name"), job);
  EXPECT_EQ(Text(seen.job->at("metadata").at("labels").at("eofaas.io/function")), "ndvi");
  EXPECT_EQ(Text(seen.job->at("metadata").at("managedFields").at(0).at("manager")), "eofaas");
  EXPECT_TRUE(absl::StrContains(json::serialize(seen.job->at("spec")),
                                absl::StrCat("type=image,name=", image, ",push=true")))
      << json::serialize(seen.job->at("spec"));
  EXPECT_EQ(Applies("/jobs/" + job + "?fieldManager=eofaas&force=true"), 1);
  // The ConfigMap carries the bundle's build context.
  ASSERT_TRUE(seen.config_map.has_value());
  std::string archive;
  ASSERT_TRUE(
      absl::Base64Unescape(Text(seen.config_map->at("binaryData").at("context.tar.gz")), &archive));
  absl::StatusOr<std::string> expected = ArchiveBuildContext(bundle->dir);
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(archive, *expected);

  // The pod's log reached the build log, after the step that started the Job.
  const std::string log = Log();
  EXPECT_TRUE(absl::StrContains(log, absl::StrCat("building image ", image, " in Job ", job)))
      << log;
  EXPECT_TRUE(absl::StrContains(log, "#1 load build definition\n#9 pushing layers")) << log;
  // Nothing of the build is left in the cluster.
  EXPECT_FALSE(server_->Object(ConfigMapPath(job)).has_value());
  EXPECT_FALSE(server_->Object(JobPath(job)).has_value());
  EXPECT_FALSE(server_->Object(PodPath(job)).has_value());
}

TEST_F(KubeBuilderTest, FailedJobFailsTheBuildWithItsReasonAndThePodsLastLines) {
  std::unique_ptr<KubeBuilder> builder = MakeBuilder(Polling(absl::Milliseconds(20)));
  ASSERT_NE(builder, nullptr);
  const eofaas::v1::Function function = Function("ndvi", 1);
  absl::StatusOr<Bundle> bundle = Render(*builder, function);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  const std::string job = JobName(function);
  std::string pod_log;
  for (int i = 1; i <= 9; ++i) absl::StrAppend(&pod_log, "step ", i, "\n");
  pod_log += "error: pip install exited with code 1\n";

  Seen seen;
  std::thread cluster = RunJob(job,
                               {.condition = "Failed",
                                .reason = "BackoffLimitExceeded",
                                .message = "Job has reached the specified backoff limit",
                                .log = pod_log},
                               &seen);
  absl::Status status = builder->Build(function, *bundle, tmpl_, Collect(), cancel_);
  cluster.join();

  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "BackoffLimitExceeded")) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "Job has reached the specified backoff limit"))
      << status;
  // The last lines, not the first ones.
  EXPECT_TRUE(absl::StrContains(status.message(), "step 9\nerror: pip install exited with code 1"))
      << status;
  EXPECT_FALSE(absl::StrContains(status.message(), "step 1\n")) << status;
  // The whole log is in the build log.
  EXPECT_TRUE(absl::StrContains(Log(), "step 1\nstep 2\n")) << Log();
  EXPECT_TRUE(absl::StrContains(Log(), "error: pip install exited with code 1")) << Log();
  EXPECT_FALSE(server_->Object(ConfigMapPath(job)).has_value());

  // A failed image is not remembered: the same bundle is built again.
  Seen again;
  cluster = RunJob(job, Complete(), &again);
  status = builder->Build(function, *bundle, tmpl_, Collect(), cancel_);
  cluster.join();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(Applies("/jobs/" + job), 2);
}

TEST_F(KubeBuilderTest, AnImageBuiltBeforeIsNotBuiltAgain) {
  std::unique_ptr<KubeBuilder> builder = MakeBuilder(Polling(absl::Milliseconds(20)));
  ASSERT_NE(builder, nullptr);
  const eofaas::v1::Function first = Function("ndvi", 1);
  absl::StatusOr<Bundle> bundle = Render(*builder, first);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  Seen seen;
  std::thread cluster = RunJob(JobName(first), Complete(), &seen);
  absl::Status status = builder->Build(first, *bundle, tmpl_, Collect(), cancel_);
  cluster.join();
  ASSERT_TRUE(status.ok()) << status;

  // A later generation with the same sources (a changed setting) has the same image.
  const eofaas::v1::Function second = Function("ndvi", 2);
  absl::StatusOr<Bundle> same = Render(*builder, second);
  ASSERT_TRUE(same.ok()) << same.status();
  ASSERT_EQ(same->artifact, bundle->artifact);
  log_.clear();
  EXPECT_TRUE(builder->Build(second, *same, tmpl_, Collect(), cancel_).ok());
  EXPECT_TRUE(absl::StrContains(Log(), "built before")) << Log();
  EXPECT_EQ(Applies("/jobs/"), 1);
  EXPECT_EQ(Applies(JobName(second)), 0);
}

TEST_F(KubeBuilderTest, CancelStopsTheWaitAndDeletesTheJob) {
  // Reading the Job's status once a minute: only the cancellation can end the wait in time.
  std::unique_ptr<KubeBuilder> builder = MakeBuilder(Polling(absl::Minutes(1)));
  ASSERT_NE(builder, nullptr);
  const eofaas::v1::Function function = Function("ndvi", 1);
  absl::StatusOr<Bundle> bundle = Render(*builder, function);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  const std::string job = JobName(function);

  std::chrono::steady_clock::time_point cancelled_at;
  std::thread canceller([&] {
    // Once the builder read the Job's status it waits for the next reading.
    EXPECT_TRUE(Eventually([&] {
      for (const tests::RecordedRequest& request : server_->Requests()) {
        if (request.method == "GET" && request.target == JobPath(job)) return true;
      }
      return false;
    }));
    cancelled_at = std::chrono::steady_clock::now();
    cancel_ = true;
  });
  absl::Status status = builder->Build(function, *bundle, tmpl_, Collect(), cancel_);
  const auto returned_at = std::chrono::steady_clock::now();
  canceller.join();

  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  EXPECT_LT(returned_at - cancelled_at, std::chrono::seconds(10));
  EXPECT_FALSE(server_->Object(JobPath(job)).has_value());
  EXPECT_FALSE(server_->Object(ConfigMapPath(job)).has_value());
}

TEST_F(KubeBuilderTest, ContextTooLargeForAConfigMapFailsBeforeAnythingIsApplied) {
  std::unique_ptr<KubeBuilder> builder = MakeBuilder();
  ASSERT_NE(builder, nullptr);
  // 6 random bits a character: 2 MiB of them stay over 1 MiB compressed.
  constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::mt19937 random(7);
  std::string data(2 << 20, ' ');
  for (char& c : data) c = kAlphabet[random() % 64];
  eofaas::v1::Function function = Function("ndvi", 1);
  (*function.mutable_files())["data.txt"] = data;
  absl::StatusOr<Bundle> bundle = Render(*builder, function);
  ASSERT_TRUE(bundle.ok()) << bundle.status();

  absl::Status status = builder->Build(function, *bundle, tmpl_, Collect(), cancel_);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "ConfigMap")) << status;
  EXPECT_TRUE(server_->Requests().empty());
}

TEST_F(KubeBuilderTest, RegistrySecretIsAppliedOnceAndItsPasswordNeverShows) {
  KubeBuilderOptions options = Polling(absl::Milliseconds(20));
  options.credentials = RegistryCredentials{.username = "robot", .password = kPassword};
  std::unique_ptr<KubeBuilder> builder = MakeBuilder(std::move(options));
  ASSERT_NE(builder, nullptr);

  const eofaas::v1::Function ndvi = Function("ndvi", 1);
  absl::StatusOr<Bundle> ndvi_bundle = Render(*builder, ndvi);
  ASSERT_TRUE(ndvi_bundle.ok()) << ndvi_bundle.status();
  Seen seen;
  std::thread cluster = RunJob(JobName(ndvi), Complete(), &seen);
  absl::Status first = builder->Build(ndvi, *ndvi_bundle, tmpl_, Collect(), cancel_);
  cluster.join();
  EXPECT_TRUE(first.ok()) << first;

  const eofaas::v1::Function other = Function("other", 1, "def handle(d, c):\n  return 1\n");
  absl::StatusOr<Bundle> other_bundle = Render(*builder, other);
  ASSERT_TRUE(other_bundle.ok()) << other_bundle.status();
  cluster =
      RunJob(JobName(other),
             {.condition = "Failed", .reason = "BackoffLimitExceeded", .log = "denied\n"}, &seen);
  absl::Status second = builder->Build(other, *other_bundle, tmpl_, Collect(), cancel_);
  cluster.join();
  EXPECT_EQ(second.code(), absl::StatusCode::kFailedPrecondition) << second;

  // Applied once, before the first build's objects.
  EXPECT_EQ(Applies("/secrets/eofaas-registry"), 1);
  std::optional<json::object> secret =
      server_->Object("/api/v1/namespaces/fns/secrets/eofaas-registry");
  ASSERT_TRUE(secret.has_value());
  EXPECT_EQ(Text(secret->at("type")), "kubernetes.io/dockerconfigjson");
  const std::vector<tests::RecordedRequest> requests = server_->Requests();
  ASSERT_FALSE(requests.empty());
  EXPECT_TRUE(absl::StrContains(requests.front().target, "/secrets/eofaas-registry"));

  // Neither the password nor the encoded credentials appear in what a user sees.
  const std::string encoded = absl::Base64Escape(absl::StrCat("robot:", kPassword));
  for (const std::string& seen_text :
       {Log(), std::string(first.message()), std::string(second.message()), second.ToString()}) {
    EXPECT_FALSE(absl::StrContains(seen_text, kPassword)) << seen_text;
    EXPECT_FALSE(absl::StrContains(seen_text, encoded)) << seen_text;
  }
  EXPECT_TRUE(absl::StrContains(Log(), "registry pull Secret fns/eofaas-registry")) << Log();
}

TEST_F(KubeBuilderTest, CreateRejectsUnusableOptionsWithoutQuotingCredentials) {
  KubeBuilderOptions options;
  options.namespace_name = "Not_A_Namespace";
  options.registry.server = kRegistry;
  EXPECT_EQ(KubeBuilder::Create(*client_, dir_ / "bundles", options).status().code(),
            absl::StatusCode::kInvalidArgument);

  options.namespace_name = kNamespace;
  options.registry.server = "";
  EXPECT_EQ(KubeBuilder::Create(*client_, dir_ / "bundles", options).status().code(),
            absl::StatusCode::kInvalidArgument);

  options.registry.server = kRegistry;
  options.credentials = RegistryCredentials{.username = "", .password = kPassword};
  absl::Status status = KubeBuilder::Create(*client_, dir_ / "bundles", options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "username")) << status;
  EXPECT_FALSE(absl::StrContains(status.message(), kPassword)) << status;
}

}  // namespace
}  // namespace eofaas::control::k8s
