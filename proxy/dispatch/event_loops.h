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

#include "absl/functional/any_invocable.h"

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
    // One thread runs it, and a socket is only ever used by the thread of its loop (posted to
    // it from elsewhere), so the reactor needs no lock per socket operation.
    Context() : io_context(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO) {}
    using execution_context::shutdown;
  };
  struct Loop {
    Context io;
    boost::asio::executor_work_guard<LoopExecutor> work{io.get_executor()};
    std::thread thread;
  };
  // A loop's thread: runs what is ready, then the burst deferred meanwhile, then waits.
  static void Run(Context& io);

  std::vector<std::unique_ptr<Loop>> loops_;
  std::atomic<size_t> next_{0};
};

/// Runs `step` on `loop`, never inside this call. On `loop`'s own thread, `step` joins the loop's
/// burst: the steps deferred while the loop works through everything ready run back to back once
/// nothing else is, before the loop waits again, and at the latest 0.5 ms after the first of
/// them. The HTTP ingress answers this way, as haproxy sends: a client asleep in its poll is then
/// woken once per burst of answers rather than once per answer, and waking a process on another
/// CPU is the dearest part of a send on loopback. From any other thread: a plain post.
void PostInBurst(const LoopExecutor& loop, absl::AnyInvocable<void() &&> step);

}  // namespace eofaas::proxy
