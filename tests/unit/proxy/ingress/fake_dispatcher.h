// A Dispatcher that runs nothing: it records invocations and completes them when the test says
// so (or at once), always on its own thread, as the real one calls back on its io threads.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "proxy/dispatch/dispatcher.h"

namespace eofaas::tests {

class FakeDispatcher final : public proxy::Dispatcher {
 public:
  /// What the fake answers by itself; nullopt holds invocations until Complete.
  using Responder = std::function<proxy::InvokeOutcome(const proxy::Invocation&)>;

  struct Received {
    std::string function;
    proxy::Invocation invocation;
  };

  FakeDispatcher() : thread_([this] { Run(); }) {}
  ~FakeDispatcher() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  /// Answers every later invocation at once with `responder`; null holds them instead.
  void SetResponder(Responder responder) {
    std::lock_guard lock(mu_);
    responder_ = std::move(responder);
  }

  void Update(std::string_view function, std::vector<proxy::ReplicaInfo> replicas) override {
    std::lock_guard lock(mu_);
    int capacity = 0;
    for (const auto& replica : replicas) capacity += replica.concurrency;
    capacity_[std::string(function)] = capacity;
  }
  void SetScalesToZero(std::string_view, bool) override {}  // the ingress does not see it
  void Remove(std::string_view function) override {
    std::lock_guard lock(mu_);
    capacity_.erase(std::string(function));
  }
  std::vector<proxy::FunctionLoad> Load() const override { return {}; }

  void Invoke(std::string_view function, proxy::Invocation invocation,
              proxy::InvokeCallback done) override {
    auto pending = std::make_shared<Pending>(this, std::move(done));
    size_t id;
    {
      std::lock_guard lock(mu_);
      if (!capacity_.count(std::string(function))) {
        proxy::InvokeOutcome outcome;
        outcome.status =
            absl::NotFoundError(absl::StrCat("function ", std::string(function), " not found"));
        Post(std::move(pending->done), std::move(outcome));
        return;
      }
      id = received_.size();
      received_.push_back({std::string(function), invocation});
      max_outstanding_ = std::max(max_outstanding_, ++outstanding_);
    }
    // Outside mu_: the group calls Cancel with its own lock held, and Cancel takes mu_.
    const bool added = invocation.group == nullptr || invocation.group->Add(pending.get());
    std::lock_guard lock(mu_);
    pending->group = invocation.group;
    if (!added || pending->cancelled) {
      proxy::InvokeOutcome outcome;
      outcome.status = absl::CancelledError("cancelled by the caller");
      ++cancelled_;
      Finish(pending, std::move(outcome));
    } else if (responder_) {
      Finish(pending, responder_(invocation));
    } else {
      held_[id] = std::move(pending);
    }
  }

  void Defer(absl::AnyInvocable<void() &&> task) override {
    std::lock_guard lock(mu_);
    tasks_.push_back([task = std::move(task)]() mutable { std::move(task)(); });
    cv_.notify_all();
  }

  absl::StatusOr<int> Capacity(std::string_view function) const override {
    std::lock_guard lock(mu_);
    auto it = capacity_.find(std::string(function));
    if (it == capacity_.end()) return absl::NotFoundError("unknown function");
    return it->second;
  }

  /// Completes the held invocation number `id` (in order of arrival) with `outcome`.
  bool Complete(size_t id, proxy::InvokeOutcome outcome) {
    std::lock_guard lock(mu_);
    auto it = held_.find(id);
    if (it == held_.end()) return false;
    Finish(it->second, std::move(outcome));
    held_.erase(it);
    return true;
  }
  /// Completes every held invocation with `outcome`, in order of arrival. Their callbacks are
  /// queued at once, as invocations that complete together.
  void CompleteAll(const proxy::InvokeOutcome& outcome) {
    std::lock_guard lock(mu_);
    for (auto& [id, pending] : held_) Finish(pending, outcome);
    held_.clear();
  }
  /// Ids of the invocations held now.
  std::vector<size_t> held() const {
    std::lock_guard lock(mu_);
    std::vector<size_t> ids;
    for (const auto& [id, pending] : held_) ids.push_back(id);
    return ids;
  }

  std::vector<Received> received() const {
    std::lock_guard lock(mu_);
    return received_;
  }
  size_t received_count() const {
    std::lock_guard lock(mu_);
    return received_.size();
  }
  /// Invocations not yet completed, and the most there ever were at once.
  int outstanding() const {
    std::lock_guard lock(mu_);
    return outstanding_;
  }
  int max_outstanding() const {
    std::lock_guard lock(mu_);
    return max_outstanding_;
  }
  size_t cancelled() const {
    std::lock_guard lock(mu_);
    return cancelled_;
  }

 private:
  struct Pending : proxy::Cancellable {
    Pending(FakeDispatcher* fake, proxy::InvokeCallback done) : fake(fake), done(std::move(done)) {}
    // Called under the group's lock: completes through the fake's thread.
    void Cancel() override {
      std::lock_guard lock(fake->mu_);
      cancelled = true;
      for (auto it = fake->held_.begin(); it != fake->held_.end(); ++it) {
        if (it->second.get() != this) continue;
        proxy::InvokeOutcome outcome;
        outcome.status = absl::CancelledError("cancelled by the caller");
        ++fake->cancelled_;
        fake->Finish(it->second, std::move(outcome));
        fake->held_.erase(it);
        return;
      }
    }
    FakeDispatcher* fake;
    proxy::InvokeCallback done;
    std::shared_ptr<proxy::CallGroup> group;
    bool cancelled = false;  // guarded by the fake's mu_
  };

  // Requires mu_. The task keeps `pending` registered until it leaves its group.
  void Finish(std::shared_ptr<Pending> pending, proxy::InvokeOutcome outcome) {
    --outstanding_;
    tasks_.push_back([pending, outcome = std::move(outcome)]() mutable {
      if (pending->group) pending->group->Remove(pending.get());
      std::move(pending->done)(std::move(outcome));
    });
    cv_.notify_all();
  }
  void Post(proxy::InvokeCallback done, proxy::InvokeOutcome outcome) {
    tasks_.push_back([done = std::move(done), outcome = std::move(outcome)]() mutable {
      std::move(done)(std::move(outcome));
    });
    cv_.notify_all();
  }

  void Run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, int> capacity_;
  Responder responder_;
  std::vector<Received> received_;
  std::map<size_t, std::shared_ptr<Pending>> held_;
  std::deque<absl::AnyInvocable<void()>> tasks_;
  int outstanding_ = 0;
  int max_outstanding_ = 0;
  size_t cancelled_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace eofaas::tests
