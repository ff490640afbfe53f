// A fixed set of threads draining a bounded queue: where slow work (SQLite, process spawns,
// builds) runs so that gRPC reactors never block.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace eofaas::common {

/// Thread-safe. The destructor runs every task already queued, then joins the threads.
class WorkerPool {
 public:
  WorkerPool(std::string name, size_t threads, size_t max_queued);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  /// Queues `task`; false (and `task` dropped) when the queue is full or the pool is stopping.
  bool Submit(std::function<void()> task);

  /// Tasks queued and not yet started.
  size_t Queued() const;

 private:
  void Run();

  const std::string name_;
  const size_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace eofaas::common
