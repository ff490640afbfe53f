#include "proxy/dispatch/event_loops.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <utility>

namespace eofaas::proxy {
namespace {

using Step = absl::AnyInvocable<void() &&>;

// The longest a step waits in a loop that never runs out of ready work.
constexpr std::chrono::microseconds kMaxBurstWait{500};

// The steps deferred on one loop: they run once the loop has nothing else ready, or when the
// burst's timer fires, whichever comes first.
class Burst {
 public:
  explicit Burst(boost::asio::io_context& io) : timer_(io) {}

  void Add(Step step) {
    steps_.push_back(std::move(step));
    if (timer_armed_) return;  // it fires within kMaxBurstWait
    timer_armed_ = true;
    timer_.expires_after(kMaxBurstWait);
    timer_.async_wait([this](const boost::system::error_code&) {
      timer_armed_ = false;
      Run();
    });
  }

  void Run() {
    // Steps deferred by a step run right after it: none is left behind when the loop waits.
    while (!steps_.empty()) {
      running_.swap(steps_);
      for (Step& step : running_) std::move(step)();
      running_.clear();
    }
  }

 private:
  std::vector<Step> steps_;
  std::vector<Step> running_;
  boost::asio::steady_timer timer_;
  bool timer_armed_ = false;
};

// The burst of the calling thread's loop; null on any thread that does not run one.
thread_local Burst* burst = nullptr;

}  // namespace

EventLoops::EventLoops(int count) {
  for (int i = 0; i < std::max(count, 1); ++i) loops_.push_back(std::make_unique<Loop>());
  for (auto& loop : loops_) loop->thread = std::thread([&io = loop->io] { Run(io); });
}

EventLoops::~EventLoops() {
  for (auto& loop : loops_) {
    loop->work.reset();
    loop->io.stop();
  }
  for (auto& loop : loops_) loop->thread.join();
  for (auto& loop : loops_) loop->io.shutdown();
}

size_t EventLoops::Current() {
  for (size_t i = 0; i < loops_.size(); ++i) {
    if (loops_[i]->io.get_executor().running_in_this_thread()) return i;
  }
  return Next();
}

size_t EventLoops::Next() { return next_.fetch_add(1, std::memory_order_relaxed) % loops_.size(); }

void EventLoops::Run(Context& io) {
  Burst loop_burst(io);
  burst = &loop_burst;
  // run_one waits for work and returns 0 once the loop is stopped; poll runs what else is ready.
  while (io.run_one() > 0) {
    io.poll();
    loop_burst.Run();
  }
  burst = nullptr;
}

void PostInBurst(const LoopExecutor& loop, absl::AnyInvocable<void() &&> step) {
  if (burst != nullptr && loop.running_in_this_thread()) {
    burst->Add(std::move(step));
  } else {
    boost::asio::post(loop, std::move(step));
  }
}

}  // namespace eofaas::proxy
