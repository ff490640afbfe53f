// QueuedWriter: a self-owning server-streaming reactor fed from any thread. Messages are queued
// (bounded) and written one at a time; the reactor frees itself when the call is done.
#pragma once

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <mutex>

namespace eofaas::control {

template <typename Response>
class QueuedWriter final : public grpc::ServerWriteReactor<Response> {
 public:
  /// A stream whose client falls `max_queued` messages behind is ended with RESOURCE_EXHAUSTED
  /// rather than buffered without bound: the messages not yet written are dropped at once (the
  /// one being written excepted), as the client must start over anyway. What is queued before
  /// Start (the state a watch begins with, a build log so far) is not counted.
  explicit QueuedWriter(size_t max_queued = 10000) : max_queued_(max_queued) {}

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
    if (on_done_) on_done_();
    delete this;
  }

  const size_t max_queued_;
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
