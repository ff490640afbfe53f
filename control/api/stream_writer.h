// QueuedWriter: a self-owning server-streaming reactor fed from any thread. Messages are queued
// (bounded) and written one at a time; the reactor frees itself when the call is done.
// OpenStreams: the streams a service has open, for a shutdown to end.
#pragma once

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

namespace eofaas::control {

/// The streams of a service still open, so that a stopping server can end them at once: gRPC's
/// shutdown otherwise waits its whole grace for streams that never end by themselves (watches).
/// Thread-safe.
class OpenStreams {
 public:
  using Close = std::function<void(const grpc::Status&)>;

  /// Ends every open stream with `status`, and each one opened later as it opens.
  void CloseAll(const grpc::Status& status) {
    std::lock_guard lock(mu_);
    closed_ = status;
    std::vector<uint64_t> ids;
    for (const auto& [id, close] : closes_) ids.push_back(id);
    // Looked up one by one: a stream that ends inside Close removes itself meanwhile (the mutex
    // is recursive for that), and none is freed before it has removed itself.
    for (uint64_t id : ids) {
      if (auto it = closes_.find(id); it != closes_.end()) it->second(status);
    }
  }

  uint64_t Add(Close close) {
    std::lock_guard lock(mu_);
    if (closed_) close(*closed_);
    closes_.emplace(next_id_, std::move(close));
    return next_id_++;
  }

  void Remove(uint64_t id) {
    std::lock_guard lock(mu_);
    closes_.erase(id);
  }

 private:
  std::recursive_mutex mu_;
  std::optional<grpc::Status> closed_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Close> closes_;
};

/// How far a client may fall behind a stream (see QueuedWriter).
inline constexpr size_t kMaxQueuedMessages = 10000;

template <typename Response>
class QueuedWriter final : public grpc::ServerWriteReactor<Response> {
 public:
  /// A stream whose client falls `max_queued` messages behind is ended with RESOURCE_EXHAUSTED
  /// rather than buffered without bound: the messages not yet written are dropped at once (the
  /// one being written excepted), as the client must start over anyway. What is queued before
  /// Start (the state a watch begins with, a build log so far) is not counted.
  ///
  /// A stream of `open` (when given) is ended by its CloseAll.
  explicit QueuedWriter(size_t max_queued = kMaxQueuedMessages, OpenStreams* open = nullptr)
      : max_queued_(max_queued), open_(open) {
    if (open_ != nullptr) {
      open_id_ = open_->Add([this](const grpc::Status& status) { Close(status); });
    }
  }

  /// Begins writing what was queued (nothing is written or finished before, so a subscription
  /// can be set up first). `on_done` runs once from OnDone, before the reactor is freed: the
  /// place to unsubscribe.
  void Start(std::function<void()> on_done = nullptr) {
    {
      std::lock_guard lock(mu_);
      on_done_ = std::move(on_done);
      started_ = true;
      writing_ = true;
      initial_ = queue_.size();
    }
    Next();
  }

  /// Queues a message. Thread-safe; ignored once the stream is closing.
  void Push(Response message) {
    {
      std::lock_guard lock(mu_);
      if (closing_) return;
      if (started_ && queue_.size() - initial_ >= max_queued_) {
        closing_ = true;
        status_ = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                               "the client reads too slowly: stream ended");
        // Once started, the front is being written: gRPC holds it until OnWriteDone.
        const size_t kept = std::min<size_t>(queue_.size(), 1);
        queue_.erase(queue_.begin() + kept, queue_.end());
        initial_ = std::min(initial_, kept);
      } else {
        queue_.push_back(std::move(message));
      }
      if (!started_ || writing_) return;
      writing_ = true;
    }
    Next();
  }

  /// Ends the stream with `status` once every queued message is written. Thread-safe.
  void Close(grpc::Status status) {
    {
      std::lock_guard lock(mu_);
      if (closing_) return;
      closing_ = true;
      status_ = std::move(status);
      if (!started_ || writing_) return;
      writing_ = true;
    }
    Next();
  }

 private:
  // Starts the next write, or finishes when the queue is empty and the stream is closing.
  void Next() {
    std::unique_lock lock(mu_);
    if (!queue_.empty()) {
      const Response* front = &queue_.front();
      lock.unlock();
      this->StartWrite(front);
      return;
    }
    writing_ = false;
    if (closing_ && !finished_) {
      finished_ = true;
      grpc::Status status = status_;
      lock.unlock();
      this->Finish(status);
    }
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard lock(mu_);
      queue_.pop_front();
      if (initial_ > 0) --initial_;
      if (!ok) {
        // The client went away: nothing more can be written.
        queue_.clear();
        initial_ = 0;
        closing_ = true;
        status_ = grpc::Status(grpc::StatusCode::CANCELLED, "stream broken");
      }
    }
    Next();
  }

  void OnCancel() override { Close(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled")); }

  void OnDone() override {
    if (open_ != nullptr) open_->Remove(open_id_);
    if (on_done_) on_done_();
    delete this;
  }

  const size_t max_queued_;
  OpenStreams* const open_;
  uint64_t open_id_ = 0;
  std::function<void()> on_done_;
  std::mutex mu_;
  std::deque<Response> queue_;
  size_t initial_ = 0;  // the messages queued before Start still in `queue_`
  bool started_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool finished_ = false;
  grpc::Status status_;
};

}  // namespace eofaas::control
