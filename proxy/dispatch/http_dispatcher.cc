#include "proxy/dispatch/http_dispatcher.h"

#include <boost/asio/defer.hpp>
#include <boost/asio/post.hpp>
#include <random>

#include "absl/strings/str_cat.h"
#include "proxy/dispatch/call.h"

namespace eofaas::proxy {
namespace {

// Debian's Abseil has its own string_view, which its hash maps look up by.
absl::string_view Key(std::string_view text) { return {text.data(), text.size()}; }

}  // namespace

HttpDispatcher::FunctionState::FunctionState(std::string name, const common::Clock& clock,
                                             const HttpDispatcherOptions& options, uint64_t seed,
                                             std::shared_ptr<DispatchMetrics> metrics)
    : name(std::move(name)),
      metrics(std::move(metrics)),
      gauges(this->metrics->AcquireFunction(this->name)),
      balancer(clock, options.balancer, seed),
      retry_budget(clock, options.retry_budget) {}

HttpDispatcher::FunctionState::~FunctionState() { metrics->ReleaseFunction(name); }

void HttpDispatcher::FunctionState::GrantQueued(std::vector<std::shared_ptr<Call>>& woken) {
  for (auto waiting = queue.begin(); waiting != queue.end();) {
    Call& call = **waiting;
    Balancer::PickResult pick = balancer.Pick(call.tried_);
    if (pick.error == Balancer::PickError::kAtCapacity) {
      if (call.tried_.empty()) return;  // every replica is busy
      ++waiting;  // the free ones failed this call: a later call may take them
      continue;
    }
    if (pick.error == Balancer::PickError::kNoReplicas && scales_to_zero) return;
    if (pick.error != Balancer::PickError::kNone) {
      // Every replica left or is ejected: waiting would only end at the deadline.
      DropQueued(
          absl::UnavailableError(absl::StrCat("no replica of function ", name, " is up any more")),
          woken);
      return;
    }
    gauges.in_flight->Increment();
    gauges.queue_depth->Decrement();
    call.granted_ = std::move(pick.replica);
    call.queue_position_.reset();
    woken.push_back(std::move(*waiting));
    waiting = queue.erase(waiting);
  }
}

void HttpDispatcher::FunctionState::DropQueued(const absl::Status& status,
                                               std::vector<std::shared_ptr<Call>>& woken) {
  for (auto& call : queue) {
    call->dropped_ = status;
    call->queue_position_.reset();
    gauges.queue_depth->Decrement();
    woken.push_back(std::move(call));
  }
  queue.clear();
}

std::shared_ptr<HttpDispatcher> HttpDispatcher::Create(EventLoops& loops,
                                                       const common::Clock& clock,
                                                       HttpDispatcherOptions options,
                                                       std::shared_ptr<DispatchMetrics> metrics) {
  return std::shared_ptr<HttpDispatcher>(
      new HttpDispatcher(loops, clock, std::move(options), std::move(metrics)));
}

HttpDispatcher::HttpDispatcher(EventLoops& loops, const common::Clock& clock,
                               HttpDispatcherOptions options,
                               std::shared_ptr<DispatchMetrics> metrics)
    : loops_(loops),
      deadlines_(std::make_shared<DeadlineSweep>(loops.at(0))),
      clock_(clock),
      options_(std::move(options)),
      metrics_(std::move(metrics)),
      seed_(std::random_device{}()) {}

HttpDispatcher::~HttpDispatcher() = default;

std::shared_ptr<HttpDispatcher::FunctionState> HttpDispatcher::Find(
    std::string_view function) const {
  std::lock_guard lock(mu_);
  auto it = functions_.find(Key(function));
  return it == functions_.end() ? nullptr : it->second;
}

void HttpDispatcher::Update(std::string_view function, std::vector<ReplicaInfo> replicas) {
  std::shared_ptr<FunctionState> state;
  {
    std::lock_guard lock(mu_);
    auto& slot = functions_[std::string(function)];
    if (slot == nullptr) {
      slot = std::make_shared<FunctionState>(std::string(function), clock_, options_, seed_++,
                                             metrics_);
    }
    state = slot;
  }
  std::vector<std::string> stale;
  std::vector<std::shared_ptr<Call>> woken;
  {
    std::lock_guard lock(state->mu);
    stale = state->balancer.Update(std::move(replicas));
    state->GrantQueued(woken);  // new replicas may take queued work at once
  }
  for (auto& call : woken) call->Wake();
  ClosePools(stale);
}

void HttpDispatcher::SetScalesToZero(std::string_view function, bool scales_to_zero) {
  std::shared_ptr<FunctionState> state = Find(function);
  if (state == nullptr) return;
  std::vector<std::shared_ptr<Call>> woken;
  {
    std::lock_guard lock(state->mu);
    state->scales_to_zero = scales_to_zero;
    state->GrantQueued(woken);  // calls held for a first replica fail when it will not come
  }
  for (auto& call : woken) call->Wake();
}

std::vector<FunctionLoad> HttpDispatcher::Load() const {
  std::vector<std::shared_ptr<FunctionState>> functions;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, state] : functions_) functions.push_back(state);
  }
  std::vector<FunctionLoad> load;
  for (const auto& state : functions) {
    std::lock_guard lock(state->mu);
    const int in_flight = static_cast<int>(state->gauges.in_flight->Value());
    const int queued = static_cast<int>(state->queue.size());
    if (in_flight > 0 || queued > 0) load.push_back({state->name, in_flight, queued});
  }
  return load;
}

void HttpDispatcher::Remove(std::string_view function) {
  std::shared_ptr<FunctionState> state;
  {
    std::lock_guard lock(mu_);
    auto it = functions_.find(Key(function));
    if (it == functions_.end()) return;
    state = std::move(it->second);
    functions_.erase(it);
  }
  std::vector<std::string> addresses;
  std::vector<std::shared_ptr<Call>> woken;
  {
    std::lock_guard lock(state->mu);
    state->removed = true;
    addresses = state->balancer.Update({});
    state->DropQueued(
        absl::NotFoundError(absl::StrCat("function ", std::string(function), " was removed")),
        woken);
  }
  for (auto& call : woken) call->Wake();
  ClosePools(addresses);
}

void HttpDispatcher::Invoke(std::string_view function, Invocation invocation, InvokeCallback done) {
  std::shared_ptr<FunctionState> state;
  bool shut_down;
  {
    std::lock_guard lock(mu_);
    shut_down = shut_down_;
    if (auto it = functions_.find(Key(function)); it != functions_.end()) state = it->second;
  }
  if (shut_down) {
    return Reject(std::move(done), absl::UnavailableError("the proxy is shutting down"));
  }
  if (state == nullptr) {
    return Reject(std::move(done), absl::NotFoundError(absl::StrCat(
                                       "function ", std::string(function), " not found")));
  }
  Call::Start(std::make_shared<Call>(shared_from_this(), std::move(state), std::move(invocation),
                                     std::move(done)));
}

void HttpDispatcher::Defer(absl::AnyInvocable<void() &&> task) {
  // On a loop's thread, Asio queues it behind the handlers already due there; from elsewhere it
  // is a post to the next loop.
  boost::asio::defer(loops_.at(loops_.Current()),
                     [task = std::move(task)]() mutable { std::move(task)(); });
}

absl::StatusOr<int> HttpDispatcher::Capacity(std::string_view function) const {
  std::shared_ptr<FunctionState> state = Find(function);
  if (state == nullptr) {
    return absl::NotFoundError(absl::StrCat("function ", std::string(function), " not found"));
  }
  std::lock_guard lock(state->mu);
  return state->balancer.Capacity();
}

void HttpDispatcher::Shutdown() {
  std::vector<std::shared_ptr<FunctionState>> functions;
  std::vector<std::shared_ptr<ConnectionPool>> pools;
  {
    std::lock_guard lock(mu_);
    shut_down_ = true;
    for (auto& [name, state] : functions_) functions.push_back(state);
    for (auto& [address, pool] : pools_) pools.push_back(pool);
    pools_.clear();
  }
  std::vector<std::shared_ptr<Call>> woken;
  for (auto& state : functions) {
    std::lock_guard lock(state->mu);
    state->DropQueued(absl::UnavailableError("the proxy is shutting down"), woken);
  }
  for (auto& call : woken) call->Wake();
  for (auto& pool : pools) pool->Close();
}

std::shared_ptr<ConnectionPool> HttpDispatcher::Pool(const std::string& address, int concurrency) {
  const auto max_idle = static_cast<size_t>(std::max(concurrency, 1));
  std::lock_guard lock(mu_);
  auto& pool = pools_[address];
  if (pool == nullptr) {
    pool = std::make_shared<ConnectionPool>(address, max_idle, loops_.size());
    if (shut_down_) pool->Close();  // serves this call, keeps nothing
  } else if (pool->max_idle() != max_idle) {
    pool->set_max_idle(max_idle);
  }
  return pool;
}

void HttpDispatcher::ClosePools(const std::vector<std::string>& addresses) {
  // A pool is per address, whichever functions share it; one that is still needed is simply
  // created again on its next use.
  std::vector<std::shared_ptr<ConnectionPool>> closed;
  {
    std::lock_guard lock(mu_);
    for (const auto& address : addresses) {
      if (auto it = pools_.find(address); it != pools_.end()) {
        closed.push_back(std::move(it->second));
        pools_.erase(it);
      }
    }
  }
  for (auto& pool : closed) pool->Close();
}

void HttpDispatcher::Reject(InvokeCallback done, absl::Status status) {
  boost::asio::post(loops_.at(loops_.Current()),
                    [done = std::move(done), status = std::move(status)]() mutable {
                      InvokeOutcome outcome;
                      outcome.status = std::move(status);
                      std::move(done)(std::move(outcome));
                    });
}

}  // namespace eofaas::proxy
