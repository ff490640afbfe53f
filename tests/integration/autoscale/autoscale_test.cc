// Autoscaling end to end: the real eofaas-control decides replica counts from the load the real
// eofaas-proxy reports, for python3 replicas whose handler sleeps. Short windows (3 s stable,
// 1 s panic, 2 s idle grace) keep the tests quick.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/integration/proxy/ingress/proxy_process.h"
#include "tests/support/control_plane.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"

namespace eofaas::tests {
namespace {

const std::string kData = EOFAAS_SOURCE_DIR "/examples/data";

// A python3 function that sleeps args.ms milliseconds per call.
eofaas::v1::Function Sleeper(const std::string& name, int min_replicas, int max_replicas) {
  eofaas::v1::Function function;
  function.set_name(name);
  function.set_template_("python3");
  (*function.mutable_files())["handler.py"] =
      "import time\n\n\ndef handle(data, ctx):\n"
      "    time.sleep(ctx.args.get('ms', 0) / 1000)\n"
      "    return {'slept_ms': ctx.args.get('ms', 0)}\n";
  function.mutable_scaling()->set_min_replicas(min_replicas);
  function.mutable_scaling()->set_max_replicas(max_replicas);
  function.mutable_scaling()->set_target_concurrency(1);
  return function;
}

eofaas::v1::InvokeRequest Call(const std::string& function, int sleep_ms) {
  eofaas::v1::InvokeRequest request;
  request.set_function(function);
  request.mutable_cursor()->set_uri("file://" + kData + "/scenes/2024-03.txt");
  (*request.mutable_args()->mutable_fields())["ms"].set_number_value(sleep_ms);
  return request;
}

bool AtZero(const eofaas::v1::Function& function) {
  return function.status().replicas() == 0 && function.status().desired_replicas() == 0;
}

class AutoscaleTest : public ::testing::Test {
 protected:
  void SetUp() override { Restart(); }

  // Starts the control plane on the test's data directory.
  void Restart() {
    auto plane =
        ControlPlane::Start({.data_dir = dir_ / "control",
                             .flags = {"--data_root=" + kData, "--autoscale_stable_window=3s",
                                       "--autoscale_panic_window=1s", "--scale_to_zero_grace=2s"}});
    ASSERT_TRUE(plane.ok()) << plane.status();
    plane_ = *std::move(plane);
  }

  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "control plane log:\n" << plane_->Log();
      if (proxy_) std::cerr << "proxy log:\n" << proxy_->Log();
    }
    proxy_.reset();
    const std::string instance = plane_->instance();
    plane_->Kill();
    KillReplicaGroups(instance);
  }

  void Deploy(const eofaas::v1::Function& function) {
    eofaas::v1::CreateFunctionRequest create;
    *create.mutable_function() = function;
    eofaas::v1::CreateFunctionResponse created;
    grpc::Status status = plane_->provision().CreateFunction(Context().get(), create, &created);
    ASSERT_TRUE(status.ok()) << status.error_message();
    auto ready = plane_->WaitReady(function.name());
    ASSERT_TRUE(ready.ok()) << ready.status();
    auto proxy = ProxyProcess::Start(
        {"--control=" + plane_->grpc_address(), "--data_root=" + kData}, dir_ / "proxy.log");
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = *std::move(proxy);
  }

  eofaas::v1::Function Get(const std::string& name) {
    eofaas::v1::GetFunctionRequest request;
    request.set_name(name);
    eofaas::v1::GetFunctionResponse response;
    grpc::Status status = plane_->provision().GetFunction(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.function();
  }

  TempDir dir_;
  std::unique_ptr<ControlPlane> plane_;
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_F(AutoscaleTest, IdleFunctionScalesToZeroAndItsNextCallWaitsForTheFirstReplica) {
  Deploy(Sleeper("sleeper", 0, 2));
  // Idle for the grace: no replica, and still READY.
  auto at_zero = plane_->WaitFor("sleeper", AtZero);
  ASSERT_TRUE(at_zero.ok()) << at_zero.status();
  EXPECT_EQ(at_zero->status().deploy_phase(), eofaas::v1::DEPLOY_PHASE_READY);
  EXPECT_EQ(at_zero->status().ready_replicas(), 0);
  EXPECT_TRUE(absl::StrContains(at_zero->status().autoscaler().reason(), "scale to zero"))
      << at_zero->status().autoscaler().reason();

  // The call is held by the proxy while the control plane starts a replica, then answered.
  const absl::Time start = absl::Now();
  eofaas::v1::InvokeResponse response;
  grpc::Status status =
      proxy_->invoker().Invoke(Context(absl::Seconds(20)).get(), Call("sleeper", 0), &response);
  const absl::Duration latency = absl::Now() - start;
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.result(), R"({"slept_ms":0})");
  std::cerr << "first response from zero replicas: " << absl::ToDoubleMilliseconds(latency)
            << " ms\n";
  // One waiting call over 0.7 of a replica's concurrency of 1: two replicas.
  EXPECT_GE(Get("sleeper").status().ready_replicas(), 1);

  auto metrics = HttpRequest(plane_->metrics_address(), "GET", "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_TRUE(
      absl::StrContains(metrics->body, R"(eofaas_autoscaler_desired_replicas{function="sleeper"})"))
      << metrics->body;
  EXPECT_TRUE(absl::StrContains(metrics->body,
                                R"(eofaas_autoscaler_observed_concurrency{function="sleeper"})"));
}

// A new generation of a function at zero proves it starts with one replica, then goes back to
// zero once it serves and is idle.
TEST_F(AutoscaleTest, AnUpdateAtZeroRollsOutThenScalesBackToZero) {
  Deploy(Sleeper("updated", 0, 2));
  ASSERT_TRUE(plane_->WaitFor("updated", AtZero).ok());
  eofaas::v1::UpdateFunctionRequest update;
  *update.mutable_function() = Sleeper("updated", 0, 2);
  (*update.mutable_function()->mutable_files())["handler.py"] += "# generation 2\n";
  eofaas::v1::UpdateFunctionResponse updated;
  grpc::Status status = plane_->provision().UpdateFunction(Context().get(), update, &updated);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto rolled_out = plane_->WaitFor("updated", [](const eofaas::v1::Function& f) {
    return f.status().observed_generation() == 2 && AtZero(f);
  });
  ASSERT_TRUE(rolled_out.ok()) << rolled_out.status();
  EXPECT_EQ(rolled_out->status().deploy_phase(), eofaas::v1::DEPLOY_PHASE_READY)
      << rolled_out->status().message();
}

// A function the control plane left at zero replicas stays there when it starts again, rather
// than waking a replica for a new grace.
TEST_F(AutoscaleTest, AFunctionAtZeroStaysThereAcrossARestart) {
  Deploy(Sleeper("resting", 0, 2));
  ASSERT_TRUE(plane_->WaitFor("resting", AtZero).ok());
  proxy_.reset();
  ASSERT_EQ(plane_->Stop(), 0) << plane_->Log();
  Restart();
  for (int i = 0; i < 15; ++i) {  // 3 s: longer than the grace
    const eofaas::v1::Function function = Get("resting");
    ASSERT_TRUE(AtZero(function)) << function.DebugString();
    ASSERT_EQ(function.status().deploy_phase(), eofaas::v1::DEPLOY_PHASE_READY);
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_TRUE(ReplicaGroups(plane_->instance()).empty());
}

TEST_F(AutoscaleTest, LoadRampScalesUpAndBackDownWithoutAFailedCall) {
  Deploy(Sleeper("ramp", 1, 4));
  std::atomic<int> clients_wanted = 1;
  std::atomic<bool> stop = false;
  std::atomic<int> succeeded = 0, failed = 0;
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&, i] {
      while (!stop) {
        if (i >= clients_wanted) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          continue;
        }
        eofaas::v1::InvokeResponse response;
        grpc::Status status = proxy_->invoker().Invoke(Context(absl::Seconds(20)).get(),
                                                       Call("ramp", 100), &response);
        if (status.ok() && response.has_result()) {
          ++succeeded;
        } else {
          ++failed;
          std::cerr << "call failed: " << status.error_message() << "\n";
        }
      }
    });
  }
  auto replicas_reach = [&](const std::function<bool(int)>& done) {
    return plane_->WaitFor("ramp", [&](const eofaas::v1::Function& f) {
      return done(f.status().ready_replicas()) && done(f.status().desired_replicas());
    });
  };
  // One client keeps one replica busy: 1 / 0.7 per replica wants two.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  clients_wanted = 4;
  auto up = replicas_reach([](int replicas) { return replicas == 4; });
  EXPECT_TRUE(up.ok()) << up.status();
  // Back to no load: down to min_replicas, at most halving per step.
  clients_wanted = 0;
  auto down = replicas_reach([](int replicas) { return replicas == 1; });
  EXPECT_TRUE(down.ok()) << down.status();
  stop = true;
  for (auto& client : clients) client.join();
  EXPECT_EQ(failed, 0);
  EXPECT_GT(succeeded, 20);
  EXPECT_TRUE(absl::StrContains(plane_->Log(), "autoscaler: 4 -> 2 replicas")) << plane_->Log();
}

}  // namespace
}  // namespace eofaas::tests
