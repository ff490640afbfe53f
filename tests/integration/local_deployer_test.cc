// LocalDeployer against real replica processes (tests/fixtures/replica.py), with and without the
// bubblewrap sandbox: readiness, scaling, rollout, crash loops, restarts, removal and adoption.
#include "control/deploy/local_deployer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <future>
#include <iostream>
#include <mutex>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "control/deploy/health_probe.h"
#include "control/deploy/replica_process.h"
#include "prometheus/registry.h"
#include "tests/support/eventually.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"

namespace eofaas::control {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using tests::Eventually;

constexpr auto kWait = seconds(30);

// Every observation the deployer reports, per function. Thread-safe.
class Observations {
 public:
  void Add(const DeploymentObservation& observation) {
    {
      std::lock_guard lock(mu_);
      history_[observation.function].push_back(observation);
    }
    changed_.notify_all();
  }

  // Waits until the latest observation of `function` satisfies `done`; returns it, or nullopt
  // after `timeout` (the caller's ASSERT then shows the last one).
  std::optional<DeploymentObservation> WaitFor(
      const std::string& function, const std::function<bool(const DeploymentObservation&)>& done,
      std::chrono::seconds timeout = kWait) {
    std::unique_lock lock(mu_);
    const bool ok = changed_.wait_for(lock, timeout, [&] {
      const auto& seen = history_[function];
      return !seen.empty() && done(seen.back());
    });
    if (!ok) return std::nullopt;
    return history_[function].back();
  }

  std::vector<DeploymentObservation> History(const std::string& function) {
    std::lock_guard lock(mu_);
    return history_[function];
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, std::vector<DeploymentObservation>> history_;
};

std::string Get(const std::string& address, const std::string& path) {
  auto response = tests::HttpRequest(address, "GET", path);
  return response.ok() ? absl::StrCat(response->status, " ", response->body)
                       : response.status().ToString();
}

int PortOf(const std::string& address) { return std::stoi(address.substr(address.find(':') + 1)); }

std::vector<std::string> Addresses(const DeploymentObservation& observation) {
  std::vector<std::string> addresses;
  for (const auto& endpoint : observation.endpoints) addresses.push_back(endpoint.address);
  return addresses;
}

double ReplicaGauge(prometheus::Registry& registry, const std::string& state) {
  for (const auto& family : registry.Collect()) {
    if (family.name != "eofaas_replicas") continue;
    for (const auto& metric : family.metric) {
      if (metric.label.size() == 1 && metric.label[0].value == state) return metric.gauge.value;
    }
  }
  return -1;
}

class LocalDeployerTest : public ::testing::TestWithParam<SandboxMode> {
 protected:
  void SetUp() override {
    if (GetParam() == SandboxMode::kBwrap && !BwrapAvailable()) {
      GTEST_SKIP() << "bubblewrap does not work here";
    }
    std::filesystem::create_directories(temp_ / "bundle");
    std::filesystem::copy_file(std::string(EOFAAS_SOURCE_DIR) + "/tests/fixtures/replica.py",
                               temp_ / "bundle/replica.py");
    data_file_ = temp_.Write("data/scenes/a.txt", "line\n");
    std::random_device random;
    instance_ = absl::StrCat("test-", random(), random());
  }

  void TearDown() override {
    deployer_.reset();
    EXPECT_TRUE(FindReplicaGroups(instance_).empty()) << "replicas left behind";
  }

  LocalDeployerOptions Options() const {
    LocalDeployerOptions options;
    options.instance_id = instance_;
    options.log_dir = temp_ / "logs";
    options.data_roots = {temp_ / "data"};
    options.sandbox = GetParam();
    options.drain_timeout = drain_timeout_;
    options.probe_interval = probe_interval_;
    return options;
  }

  std::unique_ptr<LocalDeployer> NewDeployer(
      Observations& observations, Deployer::Keep keep = [](auto&, auto&) { return false; }) {
    auto deployer = LocalDeployer::Create(Options(), common::SteadyClock::Get(), registry_);
    EXPECT_TRUE(deployer.ok()) << deployer.status();
    if (!deployer.ok()) return nullptr;
    EXPECT_TRUE(
        (*deployer)
            ->Start([&observations](const auto& o) { observations.Add(o); }, std::move(keep))
            .ok());
    return *std::move(deployer);
  }

  void StartDeployer() { deployer_ = NewDeployer(observations_); }

  DeploymentSpec Spec(int64_t generation, int replicas, std::map<std::string, std::string> env = {},
                      const std::string& function = "fn") const {
    DeploymentSpec spec;
    spec.function = function;
    spec.uid = "uid-1";
    spec.generation = generation;
    spec.deployment_name = absl::StrCat(function, "-g", generation);
    spec.artifact = "sha256:0";
    spec.bundle_dir = temp_ / "bundle";
    spec.command = {"/usr/bin/python3", "-B", "replica.py"};
    spec.env = std::move(env);
    spec.replicas = replicas;
    spec.concurrency = 2;
    return spec;
  }

  // Waits until `function` reports `replicas` ready replicas of `generation`, all published.
  DeploymentObservation WaitReady(int64_t generation, int replicas,
                                  const std::string& function = "fn") {
    auto observation = observations_.WaitFor(function, [&](const DeploymentObservation& o) {
      return o.target_generation == generation && o.serving_generation == generation &&
             o.ready == replicas && o.running == replicas &&
             static_cast<int>(o.endpoints.size()) == replicas;
    });
    EXPECT_TRUE(observation.has_value()) << "last: " << Describe(function);
    return observation.value_or(DeploymentObservation{});
  }

  std::string Describe(const std::string& function) {
    auto history = observations_.History(function);
    if (history.empty()) return "(no observation)";
    const auto& o = history.back();
    return absl::StrCat("target=", o.target_generation, " serving=", o.serving_generation,
                        " desired=", o.desired, " running=", o.running, " ready=", o.ready,
                        " endpoints=", o.endpoints.size(), " restarts=", o.restarts,
                        " crash_looping=", o.crash_looping, " reason=", o.reason,
                        " removed=", o.removed);
  }

  // The live replica groups of `function`, by slot.
  std::map<int, pid_t> Groups(const std::string& function = "fn") const {
    std::map<int, pid_t> groups;
    for (const auto& group : FindReplicaGroups(instance_)) {
      if (group.identity && group.identity->function == function) {
        groups[group.identity->slot] = group.pgid;
      }
    }
    return groups;
  }

  milliseconds drain_timeout_ = seconds(3);
  milliseconds probe_interval_ = seconds(1);
  tests::TempDir temp_;
  std::string data_file_;
  std::string instance_;
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  Observations observations_;
  std::unique_ptr<LocalDeployer> deployer_;
};

TEST_P(LocalDeployerTest, AppliedReplicasBecomeReadyAndAnswer) {
  StartDeployer();
  const auto applied = std::chrono::steady_clock::now();
  ASSERT_TRUE(deployer_->Apply(Spec(1, 2)).ok());
  const DeploymentObservation ready = WaitReady(1, 2);
  const auto latency =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - applied);
  RecordProperty("apply_to_ready_ms", static_cast<int>(latency.count()));
  std::cout << "apply -> 2 replicas ready (sandbox=" << SandboxModeName(GetParam())
            << "): " << latency.count() << " ms\n";

  EXPECT_EQ(ready.desired, 2);
  EXPECT_FALSE(ready.crash_looping);
  std::set<std::string> slots;
  for (const Endpoint& endpoint : ready.endpoints) {
    EXPECT_EQ(endpoint.generation, 1);
    EXPECT_EQ(endpoint.concurrency, 2);
    EXPECT_THAT(endpoint.address, ::testing::StartsWith("127.0.0.1:"));
    auto code = ProbeHealth(PortOf(endpoint.address));
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(*code, 200);
    const std::string identity = Get(endpoint.address, "/identity");
    EXPECT_THAT(identity, HasSubstr(absl::StrCat("\"EOFAAS_INSTANCE\": \"", instance_, "\"")));
    EXPECT_THAT(identity, HasSubstr("\"EOFAAS_GENERATION\": \"1\""));
    EXPECT_THAT(identity, HasSubstr("\"EOFAAS_DEPLOYMENT\": \"fn-g1\""));
    EXPECT_THAT(identity, HasSubstr("\"EOFAAS_CONCURRENCY\": \"2\""));
    EXPECT_THAT(identity, HasSubstr("\"EOFAAS_DRAIN_TIMEOUT_MS\": \"3000\""));
    EXPECT_THAT(identity, HasSubstr("\"HOME\": \"/tmp\""));
    const std::string cwd = GetParam() == SandboxMode::kBwrap ? "/app" : temp_ / "bundle";
    EXPECT_THAT(identity, HasSubstr(absl::StrCat("\"cwd\": \"", cwd, "\"")));
    slots.insert(identity.substr(identity.find("\"EOFAAS_REPLICA\": ") + 18, 3));
  }
  EXPECT_EQ(slots, (std::set<std::string>{"\"0\"", "\"1\""}));
  EXPECT_TRUE(Eventually([&] { return ReplicaGauge(*registry_, "ready") == 2; }));
  EXPECT_EQ(ReplicaGauge(*registry_, "backoff"), 0);
}

TEST_P(LocalDeployerTest, SandboxShowsOnlyBundleDataAndSystem) {
  StartDeployer();
  ASSERT_TRUE(deployer_->Apply(Spec(1, 1)).ok());
  const std::string address = WaitReady(1, 1).endpoints.at(0).address;
  auto visible = [&](const std::string& path) {
    return Get(address, absl::StrCat("/exists?path=", path));
  };
  const std::string yes = "200 {\"exists\": true}";
  const std::string no = "200 {\"exists\": false}";
  EXPECT_EQ(visible(data_file_), yes);
  EXPECT_EQ(visible("/usr/bin/python3"), yes);
  EXPECT_EQ(visible("/etc/passwd"), yes);
  if (GetParam() == SandboxMode::kBwrap) {
    EXPECT_EQ(visible("/app/replica.py"), yes);
    EXPECT_EQ(visible(temp_ / "logs"), no);
    EXPECT_EQ(visible(temp_ / "bundle"), no);
    EXPECT_EQ(visible("/etc/shadow"), no);
    EXPECT_EQ(visible(EOFAAS_SOURCE_DIR), no);
  } else {
    EXPECT_EQ(visible(temp_ / "logs"), yes);
  }
}

TEST_P(LocalDeployerTest, ScalesUpAndDown) {
  StartDeployer();
  ASSERT_TRUE(deployer_->Apply(Spec(1, 1)).ok());
  const std::string first = WaitReady(1, 1).endpoints.at(0).address;
  ASSERT_TRUE(deployer_->Apply(Spec(1, 3)).ok());
  const DeploymentObservation three = WaitReady(1, 3);
  EXPECT_EQ(three.endpoints.at(0).address, first);
  EXPECT_EQ(Groups().size(), 3u);

  ASSERT_TRUE(deployer_->Apply(Spec(1, 1)).ok());
  const DeploymentObservation one = WaitReady(1, 1);
  EXPECT_EQ(Addresses(one), std::vector<std::string>{first}) << "the highest slots drain";
  EXPECT_TRUE(Eventually([&] { return Groups().size() == 1; }));
  EXPECT_EQ(Groups().count(0), 1u);
  EXPECT_EQ(one.restarts, 0);
}

TEST_P(LocalDeployerTest, RolloutSwitchesEndpointsOnlyOnceTheNewGenerationIsReady) {
  StartDeployer();
  ASSERT_TRUE(deployer_->Apply(Spec(1, 2)).ok());
  WaitReady(1, 2);
  const std::map<int, pid_t> old_groups = Groups();
  // Generation 2 takes a while to load, so the switch cannot happen by accident.
  ASSERT_TRUE(deployer_->Apply(Spec(2, 2, {{"FIXTURE_LOAD_MS", "1000"}})).ok());
  WaitReady(2, 2);

  bool switched = false;
  for (const DeploymentObservation& o : observations_.History("fn")) {
    if (o.target_generation != 2) continue;
    ASSERT_EQ(o.endpoints.size(), 2u) << "endpoints never shrink during a rollout";
    for (const Endpoint& endpoint : o.endpoints) {
      EXPECT_EQ(endpoint.generation, o.serving_generation);
    }
    if (o.serving_generation == 2) switched = true;
    if (switched) {
      EXPECT_EQ(o.serving_generation, 2) << "no switching back";
    }
  }
  EXPECT_TRUE(switched);
  EXPECT_TRUE(Eventually([&] {
    for (const auto& [slot, pgid] : old_groups) {
      if (common::ProcessGroupAlive(pgid)) return false;
    }
    return true;
  })) << "generation 1 drains";
  for (const auto& group : FindReplicaGroups(instance_)) {
    ASSERT_TRUE(group.identity);
    EXPECT_EQ(group.identity->generation, 2);
  }
}

TEST_P(LocalDeployerTest, GenerationThatNeverGetsReadyLeavesTheOldOneServing) {
  StartDeployer();
  ASSERT_TRUE(deployer_->Apply(Spec(1, 1)).ok());
  const std::string old_address = WaitReady(1, 1).endpoints.at(0).address;
  ASSERT_TRUE(deployer_->Apply(Spec(2, 1, {{"FIXTURE_HEALTH", "503"}})).ok());
  ASSERT_TRUE(observations_.WaitFor("fn", [](const DeploymentObservation& o) {
    return o.target_generation == 2 && o.running == 1;
  }));
  // Several probe rounds: the new replica keeps answering 503.
  std::this_thread::sleep_for(milliseconds(1500));
  const auto latest = observations_.History("fn").back();
  EXPECT_EQ(latest.serving_generation, 1);
  EXPECT_EQ(latest.ready, 0);
  EXPECT_EQ(Addresses(latest), std::vector<std::string>{old_address});
  EXPECT_EQ(Get(old_address, "/healthz").substr(0, 3), "200");
}

TEST_P(LocalDeployerTest, CrashLoopIsReportedWithTheLastOutputLine) {
  StartDeployer();
  ASSERT_TRUE(deployer_->Apply(Spec(1, 1, {{"FIXTURE_CRASH_AT_START", "1"}})).ok());
  auto looping =
      observations_.WaitFor("fn", [](const DeploymentObservation& o) { return o.crash_looping; });
  ASSERT_TRUE(looping) << Describe("fn");
  EXPECT_THAT(looping->reason, HasSubstr("CrashLoopBackOff: replica 0 exited with code 1: "));
  EXPECT_THAT(looping->reason, HasSubstr("crashing at start with code 1 as told"));
  EXPECT_GE(looping->restarts, 3);
  EXPECT_EQ(looping->ready, 0);
  EXPECT_TRUE(looping->endpoints.empty());

  // A fixed generation ends the loop.
  ASSERT_TRUE(deployer_->Apply(Spec(2, 1)).ok());
  const DeploymentObservation fixed = WaitReady(2, 1);
  EXPECT_FALSE(fixed.crash_looping);
  EXPECT_EQ(fixed.restarts, 0);
}

TEST_P(LocalDeployerTest, KilledReplicaIsRestarted) {
  StartDeployer();
  ASSERT_TRUE(deployer_->Apply(Spec(1, 1)).ok());
  const std::string before = WaitReady(1, 1).endpoints.at(0).address;
  const pid_t pgid = Groups().at(0);
  ASSERT_EQ(kill(pgid, SIGKILL), 0);  // the group leader only, as `kill -9 <pid>` would

  auto restarted = observations_.WaitFor("fn", [&](const DeploymentObservation& o) {
    return o.restarts >= 1 && o.ready == 1 && o.endpoints.size() == 1 &&
           o.endpoints[0].address != before;
  });
  ASSERT_TRUE(restarted) << Describe("fn");
  EXPECT_EQ(restarted->restarts, 1);
  EXPECT_FALSE(restarted->crash_looping);
  EXPECT_TRUE(Eventually([&] { return !common::ProcessGroupAlive(pgid); }));
  EXPECT_NE(Groups().at(0), pgid);
  for (const auto& family : registry_->Collect()) {
    if (family.name == "eofaas_replica_restarts_total") {
      EXPECT_EQ(family.metric.at(0).counter.value, 1);
    }
  }
}

TEST_P(LocalDeployerTest, ReplicaThatCrashesLaterIsRestarted) {
  StartDeployer();
  ASSERT_TRUE(deployer_->Apply(Spec(1, 1, {{"FIXTURE_CRASH_AFTER_MS", "700"}})).ok());
  auto restarted = observations_.WaitFor(
      "fn", [](const DeploymentObservation& o) { return o.restarts >= 2 && o.ready == 1; });
  ASSERT_TRUE(restarted) << Describe("fn");
}

TEST_P(LocalDeployerTest, RemoveDrainsInFlightWorkAndStopsEveryProcess) {
  StartDeployer();
  ASSERT_TRUE(deployer_->Apply(Spec(1, 2)).ok());
  const std::string address = WaitReady(1, 2).endpoints.at(0).address;
  auto in_flight = std::async(std::launch::async, [&] { return Get(address, "/sleep?ms=1000"); });
  // The replica drains what it is serving when the signal comes, not what waits to be accepted.
  ASSERT_TRUE(Eventually([&] { return Get(address, "/in-flight") == "200 {\"in_flight\": 1}"; }));
  deployer_->Remove("fn");
  auto removed =
      observations_.WaitFor("fn", [](const DeploymentObservation& o) { return o.removed; });
  ASSERT_TRUE(removed) << Describe("fn");
  EXPECT_TRUE(removed->endpoints.empty());
  EXPECT_EQ(in_flight.get(), "200 {\"slept_ms\": 1000}");
  EXPECT_TRUE(Groups().empty());
}

TEST_P(LocalDeployerTest, RemovingAnUnknownFunctionIsReportedAtOnce) {
  StartDeployer();
  ASSERT_TRUE(deployer_->Apply(Spec(1, 1)).ok());
  WaitReady(1, 1);
  deployer_->Remove("other");
  auto removed = observations_.WaitFor(
      "other", [](const DeploymentObservation& o) { return o.removed; }, seconds(1));
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->desired, 0);
  EXPECT_TRUE(removed->endpoints.empty());
  EXPECT_EQ(observations_.History("other").size(), 1u);
  EXPECT_EQ(Groups().size(), 1u) << "other functions are left alone";
}

TEST_P(LocalDeployerTest, RestartedControlPlaneAdoptsWantedReplicasAndStopsTheRest) {
  StartDeployer();
  ASSERT_TRUE(deployer_->Apply(Spec(1, 2, {}, "kept")).ok());
  ASSERT_TRUE(deployer_->Apply(Spec(1, 1, {}, "dropped")).ok());
  const DeploymentObservation before = WaitReady(1, 2, "kept");
  WaitReady(1, 1, "dropped");
  const std::map<int, pid_t> kept = Groups("kept");
  const std::map<int, pid_t> dropped = Groups("dropped");
  ASSERT_EQ(kept.size(), 2u);
  ASSERT_EQ(dropped.size(), 1u);
  deployer_->Abandon();
  deployer_.reset();
  EXPECT_EQ(Groups("kept"), kept) << "abandoning leaves the replicas running";

  Observations after;
  deployer_ = NewDeployer(after, [](const std::string& function, const std::string& deployment) {
    return function == "kept" && deployment == "kept-g1";
  });
  EXPECT_TRUE(Eventually([&] { return Groups("dropped").empty(); }));
  ASSERT_TRUE(deployer_->Apply(Spec(1, 2, {}, "kept")).ok());
  auto adopted = after.WaitFor("kept", [](const DeploymentObservation& o) {
    return o.ready == 2 && o.endpoints.size() == 2 && o.serving_generation == 1;
  });
  ASSERT_TRUE(adopted);
  EXPECT_EQ(adopted->endpoints, before.endpoints);
  EXPECT_EQ(Groups("kept"), kept) << "the same processes, none started";
  EXPECT_EQ(adopted->restarts, 0);
}

TEST_P(LocalDeployerTest, LeftoverOfADeletedFunctionIsNotAdoptedByItsNamesake) {
  StartDeployer();
  ASSERT_TRUE(deployer_->Apply(Spec(1, 1)).ok());
  const std::string old_address = WaitReady(1, 1).endpoints.at(0).address;
  const pid_t old_pgid = Groups().at(0);
  deployer_->Abandon();
  deployer_.reset();

  // Deleted and created again while the control plane was down: same name, same generation
  // number, another uid and so another deployment.
  DeploymentSpec recreated = Spec(1, 1);
  recreated.uid = "uid-2";
  recreated.deployment_name = "fn-7f3a1";
  Observations after;
  deployer_ = NewDeployer(after, [&](const std::string& function, const std::string& deployment) {
    return function == "fn" && deployment == recreated.deployment_name;
  });
  ASSERT_TRUE(deployer_->Apply(recreated).ok());
  auto ready = after.WaitFor(
      "fn", [](const DeploymentObservation& o) { return o.ready == 1 && o.endpoints.size() == 1; });
  ASSERT_TRUE(ready);
  EXPECT_NE(ready->endpoints.at(0).address, old_address);
  EXPECT_TRUE(Eventually([&] { return !common::ProcessGroupAlive(old_pgid); }));
  const std::map<int, pid_t> groups = Groups();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_NE(groups.at(0), old_pgid);
  EXPECT_THAT(Get(ready->endpoints.at(0).address, "/identity"),
              HasSubstr("\"EOFAAS_DEPLOYMENT\": \"fn-7f3a1\""));
}

TEST_P(LocalDeployerTest, UnwantedLeftoverFinishesItsInFlightWork) {
  StartDeployer();
  ASSERT_TRUE(deployer_->Apply(Spec(1, 1)).ok());
  const std::string address = WaitReady(1, 1).endpoints.at(0).address;
  auto in_flight = std::async(std::launch::async, [&] { return Get(address, "/sleep?ms=1000"); });
  // The replica drains what it is serving when the signal comes, not what waits to be accepted.
  ASSERT_TRUE(Eventually([&] { return Get(address, "/in-flight") == "200 {\"in_flight\": 1}"; }));
  deployer_->Abandon();
  deployer_.reset();

  Observations after;
  const auto restarted = std::chrono::steady_clock::now();
  deployer_ = NewDeployer(after);
  EXPECT_EQ(in_flight.get(), "200 {\"slept_ms\": 1000}") << "drained, not killed";
  EXPECT_TRUE(Eventually([&] { return Groups().empty(); }));
  EXPECT_LT(std::chrono::steady_clock::now() - restarted, drain_timeout_)
      << "the replica exits once drained, before SIGKILL is due";
}

TEST_P(LocalDeployerTest, UnwantedLeftoverIgnoringSigtermIsKilledAfterTheDrainTimeout) {
  // Long enough that the replica is surely still there when looked for below.
  drain_timeout_ = milliseconds(2000);
  StartDeployer();
  ASSERT_TRUE(deployer_->Apply(Spec(1, 1, {{"FIXTURE_IGNORE_SIGTERM", "1"}})).ok());
  WaitReady(1, 1);
  deployer_->Abandon();
  deployer_.reset();

  Observations after;
  const auto restarted = std::chrono::steady_clock::now();
  deployer_ = NewDeployer(after);
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(Groups().size(), 1u) << "SIGTERM alone does not stop it";
  EXPECT_TRUE(Eventually([&] { return Groups().empty(); }));
  EXPECT_GE(std::chrono::steady_clock::now() - restarted, drain_timeout_);
}

TEST_P(LocalDeployerTest, FailingProbesTakeAReplicaOutOfTheEndpointsUntilItRecovers) {
  probe_interval_ = milliseconds(100);
  StartDeployer();
  ASSERT_TRUE(deployer_->Apply(Spec(1, 2)).ok());
  const DeploymentObservation ready = WaitReady(1, 2);
  const std::string sick = ready.endpoints.at(0).address;
  const std::string healthy = ready.endpoints.at(1).address;
  ASSERT_EQ(Get(sick, "/set-health?code=500"), "200 {\"health\": 500}");
  auto unready = observations_.WaitFor(
      "fn", [](const DeploymentObservation& o) { return o.ready == 1 && o.running == 2; });
  ASSERT_TRUE(unready) << Describe("fn");
  EXPECT_EQ(Addresses(*unready), std::vector<std::string>{healthy});
  EXPECT_TRUE(Eventually([&] { return ReplicaGauge(*registry_, "unready") == 1; }));

  ASSERT_EQ(Get(sick, "/set-health?code=200"), "200 {\"health\": 200}");
  const DeploymentObservation recovered = WaitReady(1, 2);
  EXPECT_EQ(Addresses(recovered), Addresses(ready));
  EXPECT_EQ(recovered.restarts, 0);
}

TEST_P(LocalDeployerTest, ReplicaIgnoringSigtermIsKilledAfterTheDrainTimeout) {
  drain_timeout_ = milliseconds(500);
  StartDeployer();
  ASSERT_TRUE(deployer_->Apply(Spec(1, 1, {{"FIXTURE_IGNORE_SIGTERM", "1"}})).ok());
  WaitReady(1, 1);
  const auto removing = std::chrono::steady_clock::now();
  deployer_->Remove("fn");
  ASSERT_TRUE(
      observations_.WaitFor("fn", [](const DeploymentObservation& o) { return o.removed; }));
  EXPECT_GE(std::chrono::steady_clock::now() - removing, milliseconds(500));
  EXPECT_TRUE(Groups().empty());
}

TEST_P(LocalDeployerTest, ApplyRejectsBadSpecs) {
  StartDeployer();
  DeploymentSpec no_replicas = Spec(1, -1);
  EXPECT_EQ(deployer_->Apply(no_replicas).code(), absl::StatusCode::kInvalidArgument);
  DeploymentSpec no_command = Spec(1, 1);
  no_command.command.clear();
  EXPECT_EQ(deployer_->Apply(no_command).code(), absl::StatusCode::kInvalidArgument);
  DeploymentSpec missing_bundle = Spec(1, 1);
  missing_bundle.bundle_dir = temp_ / "nowhere";
  EXPECT_EQ(deployer_->Apply(missing_bundle).code(), absl::StatusCode::kFailedPrecondition);
  DeploymentSpec missing_program = Spec(1, 1);
  missing_program.command = {"no-such-program"};
  EXPECT_EQ(deployer_->Apply(missing_program).code(), absl::StatusCode::kFailedPrecondition);
  deployer_->Shutdown();
  EXPECT_EQ(deployer_->Apply(Spec(1, 1)).code(), absl::StatusCode::kFailedPrecondition);
}

INSTANTIATE_TEST_SUITE_P(Sandbox, LocalDeployerTest,
                         ::testing::Values(SandboxMode::kNone, SandboxMode::kBwrap),
                         [](const auto& info) { return std::string(SandboxModeName(info.param)); });

}  // namespace
}  // namespace eofaas::control
