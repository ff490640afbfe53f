// Dispatch rate: Map's shape (a fixed number of invocations in flight, each completion starting
// the next) through HttpDispatcher against an in-process keep-alive replica that answers at once.
// Prints the rate and the dispatcher thread's CPU per invocation (not inflated by other load).
#include <pthread.h>
#include <time.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>

#include "tests/unit/proxy/dispatch/dispatcher_harness.h"
#include "tests/unit/proxy/dispatch/fake_replica.h"

namespace eofaas::proxy {
namespace {

using tests::DispatcherHarness;
using tests::FakeReplica;
using tests::FakeResponse;

int Run(int total, int in_flight) {
  FakeReplica replica([](const std::string&) { return FakeResponse{.body = "1"}; });
  DispatcherHarness harness({}, 1);
  harness.dispatcher().Update("f", {{replica.address(), in_flight, 1}});
  std::atomic<int> started = 0, finished = 0, failed = 0;
  std::promise<void> all_done;
  std::function<void()> start_one = [&] {
    if (started.fetch_add(1) >= total) return;
    harness.dispatcher().Invoke("f", DispatcherHarness::MakeInvocation(std::chrono::seconds(30)),
                                [&](InvokeOutcome outcome) {
                                  if (!outcome.status.ok()) ++failed;
                                  start_one();
                                  if (finished.fetch_add(1) + 1 == total) all_done.set_value();
                                });
  };
  std::promise<clockid_t> thread_clock;
  boost::asio::post(harness.loop(), [&] {
    clockid_t id;
    pthread_getcpuclockid(pthread_self(), &id);
    thread_clock.set_value(id);
  });
  const clockid_t clock = thread_clock.get_future().get();
  auto cpu_seconds = [clock] {
    timespec now;
    clock_gettime(clock, &now);
    return now.tv_sec + now.tv_nsec / 1e9;
  };
  const double cpu_start = cpu_seconds();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < in_flight; ++i) start_one();
  all_done.get_future().wait();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = cpu_seconds() - cpu_start;
  std::printf(
      "dispatch_rate invocations=%d in_flight=%d rate=%.0f/s connections=%d failed=%d "
      "dispatcher_cpu=%.2f us/invocation (%.0f/s per core)\n",
      total, in_flight, total / seconds, replica.connections(), failed.load(), cpu * 1e6 / total,
      total / cpu);
  return failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace eofaas::proxy

int main(int argc, char** argv) {
  return eofaas::proxy::Run(argc > 1 ? std::atoi(argv[1]) : 200000,
                            argc > 2 ? std::atoi(argv[2]) : 64);
}
