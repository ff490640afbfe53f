// The dispatcher against real replica processes: the python3 template's runtime and a
// fault-injecting fixture, killed and misbehaving on purpose.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <set>

#include "tests/integration/proxy/dispatch/replica_processes.h"
#include "tests/unit/proxy/dispatch/dispatcher_harness.h"

namespace eofaas::proxy {
namespace {

using namespace std::chrono_literals;
using tests::DispatcherHarness;
using tests::ReplicaProcess;

google::protobuf::Struct ParseJson(const std::string& text) {
  google::protobuf::Struct parsed;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text, &parsed).ok()) << text;
  return parsed;
}

// GET /stats of a fault replica: connections, requests.
google::protobuf::Struct Stats(const ReplicaProcess& replica) {
  auto response = tests::HttpRequest(replica.address(), "GET", "/stats");
  EXPECT_TRUE(response.ok()) << response.status();
  return ParseJson(response.ok() ? response->body : "{}");
}
double Stat(const ReplicaProcess& replica, const std::string& name) {
  return Stats(replica).fields().at(name).number_value();
}

// An invocation whose args are `args_json` (a JSON object).
Invocation MakeInvocation(const std::string& id, const std::string& args_json,
                          std::chrono::milliseconds timeout) {
  eofaas::v1::DataCursor cursor;
  cursor.set_uri("file:///data/input.txt");
  cursor.set_length(100);
  Invocation invocation;
  invocation.body_prefix = InvokeBodyPrefix(id, cursor, args_json);
  invocation.start = std::chrono::steady_clock::now();
  invocation.deadline = invocation.start + timeout;
  return invocation;
}

class DispatchIntegrationTest : public ::testing::Test {
 protected:
  std::unique_ptr<ReplicaProcess> Python(const std::string& name, int concurrency = 4) {
    auto replica = tests::StartPythonReplica(dir_, name, concurrency);
    EXPECT_TRUE(replica.ok()) << replica.status();
    return replica.ok() ? std::move(*replica) : nullptr;
  }
  std::unique_ptr<ReplicaProcess> Fault(const std::string& name, std::vector<std::string> env) {
    auto replica = tests::StartFaultReplica(dir_, name, std::move(env));
    EXPECT_TRUE(replica.ok()) << replica.status();
    return replica.ok() ? std::move(*replica) : nullptr;
  }
  InvokeOutcome Invoke(const std::string& args_json = "{}", std::chrono::milliseconds timeout = 10s,
                       const std::string& id = "item") {
    return harness_->InvokeAsync("f", MakeInvocation(id, args_json, timeout)).get();
  }

  tests::TempDir dir_;
  std::unique_ptr<DispatcherHarness> harness_ = std::make_unique<DispatcherHarness>();
};

TEST_F(DispatchIntegrationTest, InvokesThePython3Runtime) {
  auto a = Python("a");
  auto b = Python("b");
  ASSERT_TRUE(a && b);
  harness_->dispatcher().Update("f", {{a->address(), 4, 1}, {b->address(), 4, 1}});
  // Idle replicas tie, and a tie goes either way at random: one-at-a-time calls reach both
  // long before the 64th (a miss is a 2^-63 chance).
  std::set<std::string> replicas;
  for (int i = 0; i < 64 && replicas.size() < 2; ++i) {
    const std::string id = absl::StrCat("item-", i);
    InvokeOutcome outcome = Invoke("{}", 5s, id);
    ASSERT_TRUE(outcome.status.ok()) << outcome.status;
    ASSERT_FALSE(outcome.error);
    auto result = ParseJson(outcome.result).fields();
    EXPECT_EQ(result.at("id").string_value(), id);
    EXPECT_EQ(result.at("uri").string_value(), "file:///data/input.txt");
    EXPECT_EQ(result.at("attempt").number_value(), 1);
    EXPECT_GT(result.at("deadline_ms").number_value(), 4000);
    EXPECT_LE(result.at("deadline_ms").number_value(), 5000);
    replicas.insert(outcome.replica);
  }
  EXPECT_EQ(replicas.size(), 2u);  // both replicas served

  // The handler's bytes pass through untouched.
  InvokeOutcome binary = Invoke(R"({"bytes":"\u0000\u0001 bin\u00ff\n"})");
  ASSERT_TRUE(binary.status.ok()) << binary.status;
  EXPECT_EQ(binary.result, std::string("\x00\x01 bin\xff\n", 8));
}

TEST_F(DispatchIntegrationTest, FunctionErrorsComeBackAndAreNotRetried) {
  auto a = Python("a");
  ASSERT_TRUE(a);
  harness_->dispatcher().Update("f", {{a->address(), 4, 1}});
  InvokeOutcome unhandled = Invoke(R"({"fail":"bad threshold"})");
  ASSERT_TRUE(unhandled.status.ok()) << unhandled.status;
  ASSERT_TRUE(unhandled.error);
  EXPECT_EQ(unhandled.error->type, "ValueError");
  EXPECT_EQ(unhandled.error->message, "bad threshold");
  EXPECT_FALSE(unhandled.error->handled);
  EXPECT_EQ(unhandled.attempts, 1);

  InvokeOutcome handled = Invoke(R"({"fail_handled":"empty chunk"})");
  ASSERT_TRUE(handled.error);
  EXPECT_EQ(handled.error->type, "FunctionError");
  EXPECT_TRUE(handled.error->handled);
  EXPECT_EQ(harness_->Metric("eofaas_proxy_retries_total", {{"reason", "5xx"}}), 0);
}

TEST_F(DispatchIntegrationTest, ReplicaKilledMidFlightIsRetriedOnAnother) {
  auto doomed = Python("doomed");
  auto survivor = Python("survivor");
  ASSERT_TRUE(doomed && survivor);
  // Only the doomed replica is known when the invocation starts.
  harness_->dispatcher().Update("f", {{doomed->address(), 4, 1}});
  auto pending = harness_->InvokeAsync("f", MakeInvocation("item", R"({"sleep_ms":3000})", 20s));
  std::this_thread::sleep_for(500ms);  // the handler is sleeping now
  harness_->dispatcher().Update("f", {{doomed->address(), 4, 1}, {survivor->address(), 4, 1}});
  doomed->Kill();
  InvokeOutcome outcome = pending.get();
  ASSERT_TRUE(outcome.status.ok()) << outcome.status;
  EXPECT_EQ(outcome.replica, survivor->address());
  EXPECT_EQ(outcome.attempts, 2);
  EXPECT_EQ(ParseJson(outcome.result).fields().at("attempt").number_value(), 2);
  EXPECT_EQ(harness_->Metric("eofaas_proxy_retries_total", {{"reason", "reset"}}) +
                harness_->Metric("eofaas_proxy_retries_total", {{"reason", "connect"}}),
            1);
}

TEST_F(DispatchIntegrationTest, ServerErrorIsRetriedElsewhere) {
  auto broken = Fault("broken", {"FAULT_STATUS=500"});
  auto good = Python("good");
  ASSERT_TRUE(broken && good);
  harness_->dispatcher().Update("f", {{broken->address(), 4, 1}, {good->address(), 4, 1}});
  // Calls go to either replica at random: 20 of them, and more until one went to the broken one.
  for (int i = 0; i < 64 && (i < 20 || Stat(*broken, "requests") == 0); ++i) {
    InvokeOutcome outcome = Invoke();
    ASSERT_TRUE(outcome.status.ok()) << outcome.status;
    EXPECT_EQ(outcome.replica, good->address());
  }
  const double requests = Stat(*broken, "requests");
  EXPECT_GE(requests, 1);
  EXPECT_EQ(harness_->Metric("eofaas_proxy_retries_total", {{"reason", "5xx"}}), requests);
}

TEST_F(DispatchIntegrationTest, TooManyRequestsGoesToAnotherReplica) {
  auto busy = Fault("busy", {"FAULT_STATUS=429"});
  auto good = Python("good");
  ASSERT_TRUE(busy && good);
  harness_->dispatcher().Update("f", {{busy->address(), 4, 1}, {good->address(), 4, 1}});
  for (int i = 0; i < 10; ++i) {
    InvokeOutcome outcome = Invoke();
    ASSERT_TRUE(outcome.status.ok()) << outcome.status;
    EXPECT_EQ(outcome.replica, good->address());
  }
  EXPECT_EQ(harness_->Metric("eofaas_proxy_retries_total", {{"reason", "429"}}),
            Stat(*busy, "requests"));
}

TEST_F(DispatchIntegrationTest, SlowReplicaFailsOnlyItsOwnItemWithDeadlineExceeded) {
  auto slow = Fault("slow", {"FAULT_DELAY_MS=5000"});
  auto fast = Python("fast");
  ASSERT_TRUE(slow && fast);
  harness_->dispatcher().Update("f", {{slow->address(), 1, 1}});
  const auto start = std::chrono::steady_clock::now();
  auto stuck = harness_->InvokeAsync("f", MakeInvocation("stuck", "{}", 2000ms));
  ASSERT_TRUE(harness_->AwaitLoad("f", 1, 0));
  // The slow replica is at its concurrency, so the other items go to the fast one.
  harness_->dispatcher().Update("f", {{slow->address(), 1, 1}, {fast->address(), 4, 1}});
  std::vector<std::future<InvokeOutcome>> others;
  for (int i = 0; i < 4; ++i) {
    others.push_back(harness_->InvokeAsync("f", MakeInvocation("other", "{}", 5s)));
  }
  for (auto& other : others) {
    InvokeOutcome outcome = other.get();
    EXPECT_TRUE(outcome.status.ok()) << outcome.status;
    EXPECT_EQ(outcome.replica, fast->address());
  }
  InvokeOutcome outcome = stuck.get();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(outcome.status.code(), absl::StatusCode::kDeadlineExceeded) << outcome.status;
  EXPECT_GE(elapsed, 2000ms);
  EXPECT_LT(elapsed, 4000ms);  // not the replica's 5 s
  // The replica was told how long it had.
  auto body = ParseJson(Stats(*slow).fields().at("bodies").list_value().values(0).string_value());
  EXPECT_GT(body.fields().at("deadline_ms").number_value(), 1000);
  EXPECT_LE(body.fields().at("deadline_ms").number_value(), 2000);
}

TEST_F(DispatchIntegrationTest, FullQueueIsResourceExhausted) {
  harness_ = std::make_unique<DispatcherHarness>(HttpDispatcherOptions{.queue_limit = 1});
  auto a = Python("a", 1);
  ASSERT_TRUE(a);
  harness_->dispatcher().Update("f", {{a->address(), 1, 1}});
  auto running = harness_->InvokeAsync("f", MakeInvocation("running", R"({"sleep_ms":2000})", 10s));
  ASSERT_TRUE(harness_->AwaitLoad("f", 1, 0));
  auto queued = harness_->InvokeAsync("f", MakeInvocation("queued", "{}", 10s));
  ASSERT_TRUE(harness_->AwaitLoad("f", 1, 1));
  InvokeOutcome refused = Invoke();
  EXPECT_EQ(refused.status.code(), absl::StatusCode::kResourceExhausted) << refused.status;
  EXPECT_EQ(refused.attempts, 0);
  EXPECT_TRUE(running.get().status.ok());
  InvokeOutcome later = queued.get();
  ASSERT_TRUE(later.status.ok()) << later.status;
  EXPECT_EQ(ParseJson(later.result).fields().at("id").string_value(), "queued");
}

TEST_F(DispatchIntegrationTest, KeepAliveConnectionsAreReused) {
  auto replica = Fault("replica", {});
  ASSERT_TRUE(replica);
  harness_->dispatcher().Update("f", {{replica->address(), 4, 1}});
  const double before = Stat(*replica, "connections");
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(Invoke().status.ok());
  auto stats = Stats(*replica).fields();
  EXPECT_EQ(stats.at("requests").number_value(), 50);
  // One connection per event loop carried the 50 sequential calls (they take the harness's two
  // loops in turn); the other one is this /stats request.
  EXPECT_EQ(stats.at("connections").number_value() - before, 3);
}

TEST_F(DispatchIntegrationTest, ConnectionsClosedByTheReplicaAreNotReused) {
  auto replica = Fault("replica", {"FAULT_CLOSE=1"});
  ASSERT_TRUE(replica);
  harness_->dispatcher().Update("f", {{replica->address(), 4, 1}});
  for (int i = 0; i < 20; ++i) {
    InvokeOutcome outcome = Invoke();
    ASSERT_TRUE(outcome.status.ok()) << outcome.status;
    EXPECT_EQ(outcome.attempts, 1);
  }
  EXPECT_EQ(Stat(*replica, "requests"), 20);
  EXPECT_EQ(harness_->Metric("eofaas_proxy_retries_total", {{"reason", "reset"}}), 0);
}

}  // namespace
}  // namespace eofaas::proxy
