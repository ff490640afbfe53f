// The proxy's event loops: one io_context per thread, as nginx and haproxy run one loop per
// worker. Whatever a loop starts (a connection, an invocation, its connection to a replica) stays
// on that loop, so nothing needs a strand, and handlers are called through the loop's executor
// type directly rather than through a type-erased one.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

namespace eofaas::proxy {

/// The executor of one event loop.
using LoopExecutor = boost::asio::io_context::executor_type;

/// Thread-safe. Each loop runs on its own thread from construction until destruction.
class EventLoops {
 public:
  /// `count` loops; values below 1 count as 1.
  explicit EventLoops(int count);
  /// Stops the loops (handlers not yet run are dropped) and joins their threads.
  ~EventLoops();
  EventLoops(const EventLoops&) = delete;
  EventLoops& operator=(const EventLoops&) = delete;

  size_t size() const { return loops_.size(); }
  LoopExecutor at(size_t index) const { return loops_[index]->io.get_executor(); }

  /// The index of the calling thread's loop, or, from any other thread, the loops in turn.
  size_t Current();
  /// The loops in turn: where to place new work evenly.
  size_t Next();

 private:
  // An io_context that can drop its pending handlers before it is destroyed: handlers of one
  // loop may own sockets of another, so every loop drops its handlers before any loop is gone.
  class Context : public boost::asio::io_context {
   public:
    Context() : io_context(1) {}  // one thread runs it
    using execution_context::shutdown;
  };
  struct Loop {
    Context io;
    boost::asio::executor_work_guard<LoopExecutor> work{io.get_executor()};
    std::thread thread;
  };

  std::vector<std::unique_ptr<Loop>> loops_;
  std::atomic<size_t> next_{0};
};

}  // namespace eofaas::proxy
