#include "proxy/dispatch/event_loops.h"

#include <algorithm>

namespace eofaas::proxy {

EventLoops::EventLoops(int count) {
  for (int i = 0; i < std::max(count, 1); ++i) loops_.push_back(std::make_unique<Loop>());
  for (auto& loop : loops_) loop->thread = std::thread([&io = loop->io] { io.run(); });
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

}  // namespace eofaas::proxy
