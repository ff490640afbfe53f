// Runs an HttpDispatcher on two event loops for tests, with helpers to invoke and wait and to
// read its metrics.
#pragma once

#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "proxy/dispatch/envelope.h"
#include "proxy/dispatch/event_loops.h"
#include "proxy/dispatch/http_dispatcher.h"
#include "tests/support/eventually.h"

namespace eofaas::tests {

class DispatcherHarness {
 public:
  explicit DispatcherHarness(proxy::HttpDispatcherOptions options = {}, int loops = 2)
      : registry_(std::make_shared<prometheus::Registry>()),
        loops_(loops),
        dispatcher_(
            proxy::HttpDispatcher::Create(loops_, common::SteadyClock::Get(), std::move(options),
                                          std::make_shared<proxy::DispatchMetrics>(registry_))) {}
  ~DispatcherHarness() {
    dispatcher_->Shutdown();
    dispatcher_.reset();
  }

  proxy::HttpDispatcher& dispatcher() { return *dispatcher_; }
  /// The first event loop.
  proxy::LoopExecutor loop() { return loops_.at(0); }

  static proxy::Invocation MakeInvocation(std::chrono::milliseconds timeout,
                                          std::string id = "call",
                                          std::shared_ptr<proxy::CallGroup> group = nullptr,
                                          int max_attempts = 3) {
    eofaas::v1::DataCursor cursor;
    cursor.set_uri("file:///data/x.txt");
    proxy::Invocation invocation;
    invocation.body_prefix = proxy::InvokeBodyPrefix(id, cursor, "{}");
    invocation.start = std::chrono::steady_clock::now();
    invocation.deadline = invocation.start + timeout;
    invocation.max_attempts = max_attempts;
    invocation.group = std::move(group);
    return invocation;
  }

  std::future<proxy::InvokeOutcome> InvokeAsync(const std::string& function,
                                                proxy::Invocation invocation) {
    auto promise = std::make_shared<std::promise<proxy::InvokeOutcome>>();
    auto future = promise->get_future();
    dispatcher_->Invoke(function, std::move(invocation), [promise](proxy::InvokeOutcome outcome) {
      promise->set_value(std::move(outcome));
    });
    return future;
  }

  proxy::InvokeOutcome Invoke(const std::string& function,
                              std::chrono::milliseconds timeout = std::chrono::seconds(5),
                              int max_attempts = 3) {
    return InvokeAsync(function, MakeInvocation(timeout, "call", nullptr, max_attempts)).get();
  }

  /// Waits until `function` has `in_flight` calls on its replicas and `queued` waiting for one.
  /// False when it does not come to that.
  bool AwaitLoad(const std::string& function, int in_flight, int queued) {
    return Eventually([&] {
      for (const proxy::FunctionLoad& load : dispatcher_->Load()) {
        if (load.function == function) return load.in_flight == in_flight && load.queued == queued;
      }
      return false;
    });
  }

  /// The value of a counter or gauge series; -1 when absent.
  double Metric(const std::string& name, const std::map<std::string, std::string>& labels = {}) {
    for (const auto& family : registry_->Collect()) {
      if (family.name != name) continue;
      for (const auto& metric : family.metric) {
        std::map<std::string, std::string> have;
        for (const auto& label : metric.label) have[label.name] = label.value;
        if (have != labels) continue;
        return family.type == prometheus::MetricType::Counter ? metric.counter.value
                                                              : metric.gauge.value;
      }
    }
    return -1;
  }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  proxy::EventLoops loops_;
  std::shared_ptr<proxy::HttpDispatcher> dispatcher_;
};

}  // namespace eofaas::tests
