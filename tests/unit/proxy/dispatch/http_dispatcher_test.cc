#include "proxy/dispatch/http_dispatcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <future>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/unit/proxy/dispatch/dispatcher_harness.h"
#include "tests/unit/proxy/dispatch/fake_replica.h"

namespace eofaas::proxy {
namespace {

using namespace std::chrono_literals;
using tests::DispatcherHarness;
using tests::FakeReplica;
using tests::FakeResponse;

FakeReplica::Handler Answer(FakeResponse response) {
  return [response](const std::string&) { return response; };
}

// A loopback address that refuses connections: a socket bound to it and never listening holds
// the port while it lives, so no other process can take it meanwhile.
class RefusingAddress {
 public:
  RefusingAddress() : socket_(io_) {
    socket_.open(boost::asio::ip::tcp::v4());
    socket_.bind({boost::asio::ip::make_address("127.0.0.1"), 0});
  }
  std::string address() const {
    return "127.0.0.1:" + std::to_string(socket_.local_endpoint().port());
  }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
};

TEST(HttpDispatcherTest, UnknownFunctionIsNotFoundAndNeverCompletesInline) {
  DispatcherHarness harness({}, 1);
  std::promise<InvokeOutcome> done;
  std::atomic<bool> inside = false;
  boost::asio::post(harness.loop(), [&] {
    inside = true;
    harness.dispatcher().Invoke("nope", DispatcherHarness::MakeInvocation(1s),
                                [&](InvokeOutcome outcome) {
                                  EXPECT_FALSE(inside);
                                  done.set_value(std::move(outcome));
                                });
    inside = false;
  });
  InvokeOutcome outcome = done.get_future().get();
  EXPECT_EQ(outcome.status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(harness.dispatcher().Capacity("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST(HttpDispatcherTest, DeferRunsAfterTheHandlersAlreadyDue) {
  DispatcherHarness harness({}, 1);
  std::vector<std::string> order;  // one thread: no lock needed
  std::promise<void> done;
  boost::asio::post(harness.loop(), [&] {
    boost::asio::post(harness.loop(), [&] { order.push_back("due"); });
    harness.dispatcher().Defer([&] {
      order.push_back("deferred");
      done.set_value();
    });
    order.push_back("first");  // never inline
  });
  done.get_future().get();
  EXPECT_EQ(order, (std::vector<std::string>{"first", "due", "deferred"}));
}

TEST(HttpDispatcherTest, FunctionWithoutReplicasIsUnavailable) {
  DispatcherHarness harness;
  harness.dispatcher().Update("f", {});
  EXPECT_EQ(harness.Invoke("f").status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(*harness.dispatcher().Capacity("f"), 0);
}

TEST(HttpDispatcherTest, ReturnsTheResultAndPropagatesTheDeadline) {
  FakeReplica replica(Answer({.body = "result bytes"}));
  DispatcherHarness harness;
  harness.dispatcher().Update("f", {{replica.address(), 4, 1}});
  EXPECT_EQ(*harness.dispatcher().Capacity("f"), 4);
  InvokeOutcome outcome = harness.Invoke("f", 3000ms);
  ASSERT_TRUE(outcome.status.ok()) << outcome.status;
  EXPECT_EQ(outcome.result, "result bytes");
  EXPECT_FALSE(outcome.error);
  EXPECT_EQ(outcome.replica, replica.address());
  EXPECT_EQ(outcome.attempts, 1);
  ASSERT_EQ(replica.bodies().size(), 1u);
  const std::string body = replica.bodies()[0];
  EXPECT_EQ(body.find(R"({"id":"call","cursor":{"uri":"file:///data/x.txt"},"args":{},)"), 0u)
      << body;
  const size_t at = body.find("\"deadline_ms\":");
  ASSERT_NE(at, std::string::npos);
  const int deadline_ms = std::stoi(body.substr(at + 14));
  EXPECT_GT(deadline_ms, 2500);
  EXPECT_LE(deadline_ms, 3000);
  EXPECT_NE(body.find(R"("attempt":1})"), std::string::npos);
}

TEST(HttpDispatcherTest, DurationCountsFromTheInvocationsStart) {
  FakeReplica replica(Answer({.body = "result bytes"}));
  DispatcherHarness harness;
  harness.dispatcher().Update("f", {{replica.address(), 4, 1}});
  const auto before = std::chrono::steady_clock::now();
  proxy::Invocation invocation = DispatcherHarness::MakeInvocation(3000ms);
  invocation.start -= 2s;  // its request arrived two seconds ago
  InvokeOutcome outcome = harness.InvokeAsync("f", std::move(invocation)).get();
  const auto taken = std::chrono::steady_clock::now() - before;
  ASSERT_TRUE(outcome.status.ok()) << outcome.status;
  EXPECT_GE(outcome.duration, 2s);
  EXPECT_LE(outcome.duration, 2s + taken);
}

TEST(HttpDispatcherTest, FunctionErrorIsReportedAndNotRetried) {
  FakeReplica replica(Answer({.body = R"({"error":{"type":"ValueError","message":"no"}})",
                              .headers = {{"X-Eofaas-Function-Error", "unhandled"}}}));
  DispatcherHarness harness;
  harness.dispatcher().Update("f", {{replica.address(), 4, 1}});
  InvokeOutcome outcome = harness.Invoke("f");
  ASSERT_TRUE(outcome.status.ok());
  ASSERT_TRUE(outcome.error);
  EXPECT_EQ(outcome.error->type, "ValueError");
  EXPECT_EQ(outcome.error->message, "no");
  EXPECT_FALSE(outcome.error->handled);
  EXPECT_EQ(outcome.attempts, 1);
  EXPECT_EQ(replica.requests(), 1);
}

TEST(HttpDispatcherTest, ServerErrorIsRetriedOnAnotherReplica) {
  FakeReplica broken(Answer({.status = 500, .body = "boom"}));
  FakeReplica good(Answer({.body = "ok"}));
  DispatcherHarness harness;
  harness.dispatcher().Update("f", {{broken.address(), 4, 1}, {good.address(), 4, 1}});
  // Calls go to either replica at random: 20 of them, and more until one went to the broken one.
  for (int i = 0; i < 64 && (i < 20 || broken.requests() == 0); ++i) {
    InvokeOutcome outcome = harness.Invoke("f");
    ASSERT_TRUE(outcome.status.ok()) << outcome.status;
    EXPECT_EQ(outcome.result, "ok");
    EXPECT_EQ(outcome.replica, good.address());
    EXPECT_LE(outcome.attempts, 2);
  }
  EXPECT_GE(broken.requests(), 1);
  EXPECT_EQ(harness.Metric("eofaas_proxy_retries_total", {{"reason", "5xx"}}), broken.requests());
  EXPECT_EQ(harness.Metric("eofaas_proxy_retries_total", {{"reason", "connect"}}), 0);
}

TEST(HttpDispatcherTest, TooManyRequestsGoesToAnotherReplica) {
  FakeReplica busy(Answer({.status = 429}));
  FakeReplica good(Answer({.body = "ok"}));
  DispatcherHarness harness;
  harness.dispatcher().Update("f", {{busy.address(), 4, 1}, {good.address(), 4, 1}});
  for (int i = 0; i < 10; ++i) EXPECT_EQ(harness.Invoke("f").result, "ok");
  EXPECT_EQ(harness.Metric("eofaas_proxy_retries_total", {{"reason", "429"}}), busy.requests());
  // Busy is not broken: 429s never eject.
  EXPECT_EQ(harness.Metric("eofaas_proxy_ejections_total"), 0);
}

TEST(HttpDispatcherTest, RefusedConnectionsAreRetriedAndEjectTheReplica) {
  FakeReplica good(Answer({.body = "ok"}));
  const RefusingAddress dead;
  // An ejection that outlasts the test however slowly it runs: exactly one is counted.
  DispatcherHarness harness({.balancer = {.base_ejection = 1h, .max_ejection = 1h}});
  harness.dispatcher().Update("f", {{dead.address(), 4, 1}, {good.address(), 4, 1}});
  for (int i = 0; i < 40; ++i) {
    InvokeOutcome outcome = harness.Invoke("f");
    ASSERT_TRUE(outcome.status.ok()) << outcome.status;
  }
  EXPECT_EQ(harness.Metric("eofaas_proxy_ejections_total"), 1);
  EXPECT_EQ(harness.Metric("eofaas_proxy_retries_total", {{"reason", "connect"}}),
            BalancerOptions{}.eject_after_failures);
  EXPECT_EQ(*harness.dispatcher().Capacity("f"), 4);
}

TEST(HttpDispatcherTest, GivesUpAfterMaxAttempts) {
  FakeReplica broken(Answer({.status = 503, .body = "draining"}));
  DispatcherHarness harness;
  harness.dispatcher().Update("f", {{broken.address(), 4, 1}});
  InvokeOutcome outcome = harness.Invoke("f", 5s, 3);
  EXPECT_EQ(outcome.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(outcome.status.message().find("after 3 attempts"), std::string::npos) << outcome.status;
  EXPECT_EQ(outcome.attempts, 3);
  EXPECT_EQ(broken.requests(), 3);
}

TEST(HttpDispatcherTest, RetryBudgetLimitsRetries) {
  FakeReplica broken(Answer({.status = 500}));
  DispatcherHarness harness(
      {.retry_budget = {.ratio = 0.5, .min_per_second = 0, .max_balance = 1}});
  harness.dispatcher().Update("f", {{broken.address(), 4, 1}});
  // The budget holds one retry (each request adds half a retry, up to one).
  EXPECT_EQ(harness.Invoke("f", 5s, 2).attempts, 2);
  InvokeOutcome outcome = harness.Invoke("f", 5s, 2);
  EXPECT_EQ(outcome.attempts, 1);
  EXPECT_NE(outcome.status.message().find("retry budget"), std::string::npos) << outcome.status;
  EXPECT_EQ(harness.Invoke("f", 5s, 2).attempts, 2);
}

TEST(HttpDispatcherTest, SlowReplicaMeetsTheDeadline) {
  FakeReplica slow(Answer({.body = "late", .delay = 2000ms}));
  DispatcherHarness harness;
  harness.dispatcher().Update("f", {{slow.address(), 4, 1}});
  const auto start = std::chrono::steady_clock::now();
  InvokeOutcome outcome = harness.Invoke("f", 200ms);
  EXPECT_EQ(outcome.status.code(), absl::StatusCode::kDeadlineExceeded) << outcome.status;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1000ms);
  EXPECT_EQ(outcome.attempts, 1);
}

TEST(HttpDispatcherTest, FullQueueRefusesAllButCallerBoundedInvocations) {
  // Slow enough that all three are still there when the fourth comes.
  FakeReplica slow(Answer({.body = "ok", .delay = 1000ms}));
  DispatcherHarness harness({.queue_limit = 2});
  harness.dispatcher().Update("f", {{slow.address(), 1, 1}});
  std::vector<std::future<InvokeOutcome>> outcomes;
  for (int i = 0; i < 3; ++i) {
    outcomes.push_back(harness.InvokeAsync("f", DispatcherHarness::MakeInvocation(10s)));
  }
  ASSERT_TRUE(harness.AwaitLoad("f", 1, 2));  // one on the replica, two queued
  EXPECT_EQ(harness.Metric("eofaas_proxy_queue_depth", {{"function", "f"}}), 2);
  EXPECT_EQ(harness.Metric("eofaas_proxy_inflight", {{"function", "f"}}), 1);
  InvokeOutcome refused = harness.Invoke("f");
  EXPECT_EQ(refused.status.code(), absl::StatusCode::kResourceExhausted) << refused.status;
  EXPECT_EQ(refused.attempts, 0);
  // A caller that bounds its own invocations (a Map) still gets a place.
  Invocation bounded = DispatcherHarness::MakeInvocation(10s);
  bounded.bounded_by_caller = true;
  outcomes.push_back(harness.InvokeAsync("f", std::move(bounded)));
  ASSERT_TRUE(harness.AwaitLoad("f", 1, 3));
  for (auto& outcome : outcomes) EXPECT_EQ(outcome.get().result, "ok");
  EXPECT_EQ(slow.max_concurrent(), 1);
  EXPECT_EQ(harness.Metric("eofaas_proxy_queue_depth", {{"function", "f"}}), 0);
  EXPECT_EQ(harness.Metric("eofaas_proxy_inflight", {{"function", "f"}}), 0);
}

// A call retried after a failure waits for another replica than the one that failed it; calls
// queued behind it take that replica as soon as it has a free slot, instead of waiting too.
TEST(HttpDispatcherTest, CallsQueuedBehindARetryTakeTheReplicaItAvoids) {
  FakeReplica a([](const std::string& body) {
    if (absl::StrContains(body, "fails-on-a")) return FakeResponse{.status = 500};
    return FakeResponse{.body = "a", .delay = 500ms};
  });
  FakeReplica b([](const std::string& body) {
    return FakeResponse{.body = "b", .delay = absl::StrContains(body, "on-b") ? 4000ms : 0ms};
  });
  DispatcherHarness harness;
  harness.dispatcher().Update("f", {{b.address(), 1, 1}});
  auto on_b = harness.InvokeAsync("f", DispatcherHarness::MakeInvocation(10s, "on-b"));
  ASSERT_TRUE(harness.AwaitLoad("f", 1, 0));
  harness.dispatcher().Update("f", {{b.address(), 1, 1}, {a.address(), 2, 1}});
  auto first = harness.InvokeAsync("f", DispatcherHarness::MakeInvocation(10s, "first"));
  ASSERT_TRUE(harness.AwaitLoad("f", 2, 0));
  // Answered 500 by a, it waits in the queue for b; a keeps one call and one free slot.
  auto retried = harness.InvokeAsync("f", DispatcherHarness::MakeInvocation(10s, "fails-on-a"));
  ASSERT_TRUE(harness.AwaitLoad("f", 2, 1));
  auto second = harness.InvokeAsync("f", DispatcherHarness::MakeInvocation(10s, "second"));
  ASSERT_TRUE(harness.AwaitLoad("f", 3, 1));
  // Every slot is taken: this one queues behind the retried call.
  const auto queued_at = std::chrono::steady_clock::now();
  auto behind = harness.InvokeAsync("f", DispatcherHarness::MakeInvocation(10s, "behind"));
  ASSERT_TRUE(harness.AwaitLoad("f", 3, 2));
  // It goes to a once `first` ends there (after 500 ms), not after b's 4 s.
  ASSERT_EQ(behind.wait_for(2500ms), std::future_status::ready);
  InvokeOutcome outcome = behind.get();
  EXPECT_EQ(outcome.result, "a");
  EXPECT_LT(std::chrono::steady_clock::now() - queued_at, 2500ms);
  EXPECT_EQ(first.get().result, "a");
  EXPECT_EQ(second.get().result, "a");
  EXPECT_EQ(on_b.get().result, "b");
  InvokeOutcome retried_outcome = retried.get();
  EXPECT_EQ(retried_outcome.result, "b");
  EXPECT_EQ(retried_outcome.attempts, 2);
}

TEST(HttpDispatcherTest, DeadlinePassesWhileQueued) {
  FakeReplica slow(Answer({.body = "ok", .delay = 1000ms}));
  DispatcherHarness harness;
  harness.dispatcher().Update("f", {{slow.address(), 1, 1}});
  auto first = harness.InvokeAsync("f", DispatcherHarness::MakeInvocation(5s));
  ASSERT_TRUE(harness.AwaitLoad("f", 1, 0));
  InvokeOutcome queued = harness.Invoke("f", 100ms);
  EXPECT_EQ(queued.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(queued.attempts, 0);
  EXPECT_EQ(first.get().result, "ok");
}

TEST(HttpDispatcherTest, NewReplicasTakeQueuedWork) {
  FakeReplica slow(Answer({.body = "slow", .delay = 2000ms}));
  FakeReplica fast(Answer({.body = "fast"}));
  DispatcherHarness harness;
  harness.dispatcher().Update("f", {{slow.address(), 1, 1}});
  auto first = harness.InvokeAsync("f", DispatcherHarness::MakeInvocation(5s));
  ASSERT_TRUE(harness.AwaitLoad("f", 1, 0));
  auto second = harness.InvokeAsync("f", DispatcherHarness::MakeInvocation(5s));
  ASSERT_TRUE(harness.AwaitLoad("f", 1, 1));
  harness.dispatcher().Update("f", {{slow.address(), 1, 1}, {fast.address(), 1, 1}});
  EXPECT_EQ(second.wait_for(1s), std::future_status::ready);
  EXPECT_EQ(second.get().result, "fast");
  EXPECT_EQ(first.get().result, "slow");
}

TEST(HttpDispatcherTest, FunctionScaledToZeroHoldsCallsUntilItsFirstReplica) {
  FakeReplica replica(Answer({.body = "warm"}));
  DispatcherHarness harness;
  std::atomic<int> cold_calls = 0;
  harness.dispatcher().OnColdCall([&](const std::string& function) {
    EXPECT_EQ(function, "f");
    ++cold_calls;
  });
  harness.dispatcher().Update("f", {});
  harness.dispatcher().SetScalesToZero("f", true);
  auto held = harness.InvokeAsync("f", DispatcherHarness::MakeInvocation(10s));
  ASSERT_TRUE(harness.AwaitLoad("f", 0, 1));
  ASSERT_EQ(held.wait_for(200ms), std::future_status::timeout);
  EXPECT_EQ(cold_calls, 1);
  EXPECT_EQ(harness.dispatcher().Load(),
            (std::vector<FunctionLoad>{{.function = "f", .in_flight = 0, .queued = 1}}));
  harness.dispatcher().Update("f", {{replica.address(), 1, 1}});
  InvokeOutcome outcome = held.get();
  EXPECT_TRUE(outcome.status.ok()) << outcome.status;
  EXPECT_EQ(outcome.result, "warm");
  EXPECT_TRUE(harness.dispatcher().Load().empty());
}

TEST(HttpDispatcherTest, HeldCallsEndAtTheirDeadlineOrWhenScaleToZeroEnds) {
  DispatcherHarness harness;
  harness.dispatcher().Update("f", {});
  harness.dispatcher().SetScalesToZero("f", true);
  EXPECT_EQ(harness.Invoke("f", 100ms).status.code(), absl::StatusCode::kDeadlineExceeded);
  auto held = harness.InvokeAsync("f", DispatcherHarness::MakeInvocation(5s));
  ASSERT_EQ(held.wait_for(100ms), std::future_status::timeout);
  harness.dispatcher().SetScalesToZero("f", false);
  EXPECT_EQ(held.get().status.code(), absl::StatusCode::kUnavailable);
  // Without scale to zero, no replica fails at once.
  EXPECT_EQ(harness.Invoke("f").status.code(), absl::StatusCode::kUnavailable);
}

TEST(HttpDispatcherTest, CancellingAGroupEndsItsCalls) {
  FakeReplica slow(Answer({.body = "ok", .delay = 3000ms}));
  DispatcherHarness harness;
  harness.dispatcher().Update("f", {{slow.address(), 1, 1}});
  auto group = std::make_shared<CallGroup>();
  auto in_flight = harness.InvokeAsync("f", DispatcherHarness::MakeInvocation(10s, "a", group));
  ASSERT_TRUE(harness.AwaitLoad("f", 1, 0));
  auto queued = harness.InvokeAsync("f", DispatcherHarness::MakeInvocation(10s, "b", group));
  ASSERT_TRUE(harness.AwaitLoad("f", 1, 1));
  const auto start = std::chrono::steady_clock::now();
  group->Cancel();
  EXPECT_EQ(in_flight.get().status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(queued.get().status.code(), absl::StatusCode::kCancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1000ms);
  auto later = harness.InvokeAsync("f", DispatcherHarness::MakeInvocation(10s, "c", group));
  EXPECT_EQ(later.get().status.code(), absl::StatusCode::kCancelled);
  // The slot came back: another caller runs at once.
  EXPECT_EQ(*harness.dispatcher().Capacity("f"), 1);
  EXPECT_EQ(harness.Metric("eofaas_proxy_inflight", {{"function", "f"}}), 0);
}

TEST(HttpDispatcherTest, RemovingAFunctionFailsItsQueue) {
  FakeReplica slow(Answer({.body = "ok", .delay = 1000ms}));
  DispatcherHarness harness;
  harness.dispatcher().Update("f", {{slow.address(), 1, 1}});
  auto first = harness.InvokeAsync("f", DispatcherHarness::MakeInvocation(5s));
  ASSERT_TRUE(harness.AwaitLoad("f", 1, 0));
  auto queued = harness.InvokeAsync("f", DispatcherHarness::MakeInvocation(5s));
  ASSERT_TRUE(harness.AwaitLoad("f", 1, 1));
  harness.dispatcher().Remove("f");
  EXPECT_EQ(queued.get().status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(first.get().result, "ok");  // work on a replica finishes
  EXPECT_EQ(harness.Invoke("f").status.code(), absl::StatusCode::kNotFound);
  // The function's series go once its last call has let go of it (just after completing).
  for (int i = 0; i < 100 && harness.Metric("eofaas_proxy_inflight", {{"function", "f"}}) != -1;
       ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(harness.Metric("eofaas_proxy_inflight", {{"function", "f"}}), -1);
}

TEST(HttpDispatcherTest, ShutdownFailsQueuedWorkAndRefusesNew) {
  FakeReplica slow(Answer({.body = "ok", .delay = 1000ms}));
  DispatcherHarness harness;
  harness.dispatcher().Update("f", {{slow.address(), 1, 1}});
  auto first = harness.InvokeAsync("f", DispatcherHarness::MakeInvocation(5s));
  ASSERT_TRUE(harness.AwaitLoad("f", 1, 0));
  auto queued = harness.InvokeAsync("f", DispatcherHarness::MakeInvocation(5s));
  ASSERT_TRUE(harness.AwaitLoad("f", 1, 1));
  harness.dispatcher().Shutdown();
  EXPECT_EQ(queued.get().status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(harness.Invoke("f").status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(first.get().result, "ok");
}

TEST(HttpDispatcherTest, KeepAliveConnectionsAreReused) {
  FakeReplica replica(Answer({.body = "ok"}));
  DispatcherHarness harness;
  harness.dispatcher().Update("f", {{replica.address(), 4, 1}});
  for (int i = 0; i < 50; ++i) ASSERT_EQ(harness.Invoke("f").result, "ok");
  // Calls from this thread take the two loops in turn; each loop keeps its own connection.
  EXPECT_EQ(replica.connections(), 2);
}

// A replica that runs more calls at once than the old fixed bound of 64 idle connections: every
// connection a full round used is kept for the next round, none is closed and opened again.
TEST(HttpDispatcherTest, IdleConnectionsFollowTheReplicasConcurrency) {
  constexpr int kConcurrency = 100;
  // Slow enough that each round's calls are all at the replica at once.
  FakeReplica replica(Answer({.body = "ok", .delay = 500ms}));
  DispatcherHarness harness;
  harness.dispatcher().Update("f", {{replica.address(), kConcurrency, 1}});
  for (int round = 0; round < 3; ++round) {
    std::vector<std::future<InvokeOutcome>> calls;
    for (int i = 0; i < kConcurrency; ++i) {
      calls.push_back(harness.InvokeAsync("f", DispatcherHarness::MakeInvocation(10s)));
    }
    for (auto& call : calls) ASSERT_EQ(call.get().result, "ok") << round;
  }
  EXPECT_EQ(replica.max_concurrent(), kConcurrency);
  EXPECT_EQ(replica.requests(), 3 * kConcurrency);
  EXPECT_EQ(replica.connections(), kConcurrency);
}

TEST(HttpDispatcherTest, ConnectionsTheReplicaClosedAreNotCountedAsFailures) {
  FakeReplica replica(Answer({.body = "ok", .close_after = true}));
  DispatcherHarness harness;
  harness.dispatcher().Update("f", {{replica.address(), 4, 1}});
  for (int i = 0; i < 30; ++i) {
    InvokeOutcome outcome = harness.Invoke("f");
    ASSERT_EQ(outcome.result, "ok") << outcome.status;
    EXPECT_EQ(outcome.attempts, 1);
  }
  EXPECT_EQ(replica.requests(), 30);
  EXPECT_EQ(harness.Metric("eofaas_proxy_retries_total", {{"reason", "reset"}}), 0);
}

// Bytes that arrive on an idle connection (here a second answer nobody asked for) make it
// unusable: the next call, 30 ms later, gets its own answer rather than the stray one.
TEST(HttpDispatcherTest, AStrayAnswerOnAnIdleConnectionIsNeverTakenForTheNextCall) {
  std::atomic<int> answered = 0;
  FakeReplica replica([&](const std::string&) {
    return FakeResponse{.body = "answer-" + std::to_string(answered++),
                        .stray = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nSTALE"};
  });
  DispatcherHarness harness({}, 1);
  harness.dispatcher().Update("f", {{replica.address(), 4, 1}});
  for (int i = 0; i < 6; ++i) {
    InvokeOutcome outcome = harness.Invoke("f");
    ASSERT_TRUE(outcome.status.ok()) << outcome.status;
    EXPECT_EQ(outcome.result, "answer-" + std::to_string(i));
    std::this_thread::sleep_for(30ms);  // the stray bytes arrive meanwhile
  }
  EXPECT_EQ(replica.connections(), 6);
}

// A request on an idle connection that fails before any answer is sent again on a new
// connection without counting an attempt, as the replica most likely closed that connection as
// the request went out. A replica that instead takes the request and closes (it crashed on it)
// gets it at most twice per attempt, however many idle connections it has.
TEST(HttpDispatcherTest, AReplicaThatClosesWithoutAnAnswerGetsEachAttemptAtMostTwice) {
  constexpr int kConcurrency = 8;
  std::atomic<bool> crashing = false;
  FakeReplica replica([&](const std::string&) {
    if (crashing) return FakeResponse{.close_instead = true};
    return FakeResponse{.body = "ok", .delay = 200ms};
  });
  DispatcherHarness harness({}, 1);
  harness.dispatcher().Update("f", {{replica.address(), kConcurrency, 1}});
  std::vector<std::future<InvokeOutcome>> warm;  // leaves kConcurrency idle connections
  for (int i = 0; i < kConcurrency; ++i) {
    warm.push_back(harness.InvokeAsync("f", DispatcherHarness::MakeInvocation(5s)));
  }
  for (auto& call : warm) ASSERT_EQ(call.get().result, "ok");
  ASSERT_EQ(replica.connections(), kConcurrency);
  crashing = true;
  InvokeOutcome outcome = harness.Invoke("f", 5s, 3);
  EXPECT_EQ(outcome.status.code(), absl::StatusCode::kUnavailable) << outcome.status;
  EXPECT_EQ(outcome.attempts, 3);
  EXPECT_LE(replica.requests() - kConcurrency, 2 * 3);
}

// Pipelining (max_pipeline > 1): the invocations to a replica that start in one turn of a loop
// share a warm connection, up to max_pipeline each, and each gets its own answer.
class PipelinedDispatcherTest : public ::testing::Test {
 protected:
  static HttpDispatcherOptions Pipelined() {
    HttpDispatcherOptions options;
    options.http.max_pipeline = 4;
    return options;
  }

  // Answers each request with its envelope's id, after `delay`.
  static FakeReplica::Handler AnswerId(std::chrono::milliseconds delay) {
    return [delay](const std::string& body) {
      const size_t start = body.find(R"("id":")") + 6;
      return FakeResponse{.body = body.substr(start, body.find('"', start) - start),
                          .delay = delay};
    };
  }

  // Starts the invocations from one handler on the loop, so that they begin in its next turn.
  std::vector<std::future<InvokeOutcome>> StartTogether(DispatcherHarness& harness,
                                                        std::vector<Invocation> invocations) {
    std::vector<std::future<InvokeOutcome>> outcomes;
    std::vector<std::shared_ptr<std::promise<InvokeOutcome>>> promises;
    for (size_t i = 0; i < invocations.size(); ++i) {
      promises.push_back(std::make_shared<std::promise<InvokeOutcome>>());
      outcomes.push_back(promises.back()->get_future());
    }
    boost::asio::post(harness.loop(), [&harness, invocations = std::move(invocations),
                                       promises = std::move(promises)]() mutable {
      for (size_t i = 0; i < invocations.size(); ++i) {
        harness.dispatcher().Invoke("f", std::move(invocations[i]),
                                    [promise = promises[i]](InvokeOutcome outcome) {
                                      promise->set_value(std::move(outcome));
                                    });
      }
    });
    return outcomes;
  }

  // Leaves `count` idle connections to the replica behind.
  static void Warm(DispatcherHarness& harness, int count) {
    std::vector<std::future<InvokeOutcome>> warm;
    for (int i = 0; i < count; ++i) {
      warm.push_back(harness.InvokeAsync("f", DispatcherHarness::MakeInvocation(5s, "warm")));
    }
    for (auto& call : warm) ASSERT_TRUE(call.get().status.ok());
  }
};

TEST_F(PipelinedDispatcherTest, InvocationsOfOneTurnShareConnectionsAndGetTheirOwnAnswers) {
  FakeReplica replica(AnswerId(100ms));
  DispatcherHarness harness(Pipelined(), 1);
  harness.dispatcher().Update("f", {{replica.address(), 8, 1}});
  Warm(harness, 2);
  ASSERT_EQ(replica.connections(), 2);
  std::vector<Invocation> invocations;
  for (int i = 0; i < 8; ++i) {
    invocations.push_back(DispatcherHarness::MakeInvocation(5s, absl::StrCat("call-", i)));
  }
  std::vector<std::future<InvokeOutcome>> outcomes = StartTogether(harness, std::move(invocations));
  for (int i = 0; i < 8; ++i) {
    InvokeOutcome outcome = outcomes[i].get();
    ASSERT_TRUE(outcome.status.ok()) << outcome.status;
    EXPECT_EQ(outcome.result, absl::StrCat("call-", i));
    EXPECT_EQ(outcome.attempts, 1);
  }
  EXPECT_EQ(replica.connections(), 2) << "8 requests on the 2 warm connections, 4 on each";
  EXPECT_EQ(replica.requests(), 2 + 8);
}

// A request whose body is written from the invocation's memory (large args) is never pipelined.
TEST_F(PipelinedDispatcherTest, InvocationsWithLargeArgsTakeConnectionsOfTheirOwn) {
  FakeReplica replica(AnswerId(100ms));
  DispatcherHarness harness(Pipelined(), 1);
  harness.dispatcher().Update("f", {{replica.address(), 8, 1}});
  Warm(harness, 1);
  eofaas::v1::DataCursor cursor;
  cursor.set_uri("file:///data/x.txt");
  const std::string args = absl::StrCat(R"({"pad":")", std::string(20'000, 'x'), R"("})");
  std::vector<Invocation> invocations;
  invocations.push_back(DispatcherHarness::MakeInvocation(5s, "small"));
  invocations.push_back(DispatcherHarness::MakeInvocation(5s, "large"));
  invocations.back().body_prefix = InvokeBodyPrefix("large", cursor, args);
  std::vector<std::future<InvokeOutcome>> outcomes = StartTogether(harness, std::move(invocations));
  EXPECT_EQ(outcomes[0].get().result, "small");
  EXPECT_EQ(outcomes[1].get().result, "large");
  EXPECT_EQ(replica.connections(), 2) << "the large one did not join the small one's batch";
}

TEST_F(PipelinedDispatcherTest, ACancelledInvocationLeavesThoseSharingItsConnectionToFinish) {
  FakeReplica replica(AnswerId(300ms));
  DispatcherHarness harness(Pipelined(), 1);
  harness.dispatcher().Update("f", {{replica.address(), 8, 1}});
  Warm(harness, 1);
  auto group = std::make_shared<CallGroup>();
  std::vector<Invocation> invocations;
  invocations.push_back(DispatcherHarness::MakeInvocation(5s, "a", group));
  invocations.push_back(DispatcherHarness::MakeInvocation(5s, "b"));
  invocations.push_back(DispatcherHarness::MakeInvocation(5s, "c"));
  std::vector<std::future<InvokeOutcome>> outcomes = StartTogether(harness, std::move(invocations));
  ASSERT_TRUE(harness.AwaitLoad("f", 3, 0));
  group->Cancel();
  EXPECT_EQ(outcomes[0].get().status.code(), absl::StatusCode::kCancelled);
  for (int i = 1; i < 3; ++i) {
    InvokeOutcome outcome = outcomes[i].get();
    ASSERT_TRUE(outcome.status.ok()) << outcome.status;
    EXPECT_EQ(outcome.result, i == 1 ? "b" : "c");
    EXPECT_EQ(outcome.attempts, 1);  // sent again, not retried
  }
  EXPECT_EQ(harness.Metric("eofaas_proxy_retries_total", {{"reason", "displaced"}}), 2);
}

TEST_F(PipelinedDispatcherTest, ADeadlineThatPassesInABatchEndsThatInvocationOnly) {
  FakeReplica replica(AnswerId(400ms));
  DispatcherHarness harness(Pipelined(), 1);
  harness.dispatcher().Update("f", {{replica.address(), 8, 1}});
  Warm(harness, 1);
  std::vector<Invocation> invocations;
  invocations.push_back(DispatcherHarness::MakeInvocation(5s, "patient"));
  invocations.push_back(DispatcherHarness::MakeInvocation(150ms, "hurried"));
  std::vector<std::future<InvokeOutcome>> outcomes = StartTogether(harness, std::move(invocations));
  EXPECT_EQ(outcomes[1].get().status.code(), absl::StatusCode::kDeadlineExceeded);
  InvokeOutcome patient = outcomes[0].get();
  ASSERT_TRUE(patient.status.ok()) << patient.status;
  EXPECT_EQ(patient.result, "patient");
  EXPECT_EQ(patient.attempts, 1);
}

}  // namespace
}  // namespace eofaas::proxy
