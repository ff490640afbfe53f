// One Map call: plans the cursors on a worker, dispatches them lazily within a window, and
// streams `planned`, the items (several per message when they complete faster than the client
// takes them) and `done`, pausing when the client reads slowly.
#pragma once

#include <grpcpp/support/server_callback.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/inlined_vector.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "eofaas/v1/invoker.pb.h"
#include "proxy/dispatch/call_group.h"
#include "proxy/ingress/ingress.h"
#include "proxy/ingress/invocation_setup.h"
#include "proxy/plan/planner.h"

namespace eofaas::proxy {

/// Owns itself: created by InvokerService::Map, freed in OnDone.
///
/// Messages: one write at a time, started by a flush on a dispatcher thread (Dispatcher::Defer),
/// which runs after the completions due with the one that asked for it. While completions keep
/// coming (the previous turn of the dispatcher's loop brought new items) the flush goes round
/// once more, up to kMaxFlushTurns times; then it sends what waits as one message, up to
/// kMaxMessageItems items and kMaxMessageBytes. So under load a message carries the items of
/// many completions, and an item that completes while the stream is quiet goes out at once.
///
/// Flow control: a cursor is dispatched only while fewer than the window's cursors are
/// outstanding (in flight, or, when `ordered`, waiting for an earlier index) and fewer than
/// `max_queued_items` items wait to be written (the message being written included). So a
/// client that reads slowly pauses dispatch, and memory stays bounded by the window plus the
/// queued items. The window is `max_in_flight`, or the function's current capacity (re-read as
/// the Map goes) when that is 0. Since the window bounds them, the items wait in the function's
/// queue even when it is full (Invocation::bounded_by_caller): two Maps that together outgrow
/// the queue both finish, where an Invoke would be refused.
///
/// Ending: after `done` is written the call finishes OK. A cancelled call, or one whose client
/// stopped reading, cancels its call group (every queued or in-flight invocation) and finishes
/// once every dispatched invocation has called back, so no callback outlives the reactor.
///
/// Threads: Start on a gRPC thread, planning on a planner worker, completions and flushes on
/// dispatcher threads, write completions and cancellation on gRPC threads. The state is under
/// `mu_`, held only to decide: building items and messages, dispatching, StartWrite and Finish
/// happen outside it.
class MapReactor final : public grpc::ServerWriteReactor<eofaas::v1::MapResponse> {
 public:
  /// Bounds of one `items` message; a single item above kMaxMessageBytes travels alone.
  static constexpr size_t kMaxMessageItems = 512;
  static constexpr size_t kMaxMessageBytes = 1 << 20;
  /// Turns of the dispatcher's loop a flush waits at most for more completions.
  static constexpr int kMaxFlushTurns = 8;

  MapReactor(const IngressServices& services, grpc::CallbackServerContext* context,
             const eofaas::v1::MapRequest* request);

  /// Validates, then queues the planning, or finishes at once with the request's error.
  void Start();

 private:
  /// A completed item and its encoded size.
  struct Item {
    std::unique_ptr<eofaas::v1::MapItem> item;
    size_t bytes = 0;
  };
  /// A cursor taken from the planner, to dispatch once `mu_` is released.
  struct Dispatch {
    int64_t index;
    eofaas::v1::DataCursor cursor;
  };
  enum class Write { kNone, kPlanned, kItems, kDone };
  /// What to do once `mu_` is released, in this order.
  struct Actions {
    std::shared_ptr<CallGroup> cancel;
    Write write = Write::kNone;
    std::vector<Item> items;   // kItems
    eofaas::v1::MapDone done;  // kDone
    bool more_writes = false;  // more waits behind this message
    bool flush = false;        // queue a Flush
    absl::InlinedVector<Dispatch, 2> dispatch;
    std::optional<grpc::Status> finish;
  };

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override { delete this; }

  /// Finishes with `status` before anything was planned or written: the Map's only end, whatever
  /// comes after (a cancellation may still arrive).
  void Refuse(grpc::Status status);
  /// On a planner worker: lists the inputs, then queues `planned` and starts dispatching.
  void Plan();
  /// On a dispatcher thread: `pending` holds the index and the cursor; the outcome completes it.
  void OnItemDone(std::unique_ptr<eofaas::v1::MapItem> pending, InvokeOutcome outcome);
  /// On a dispatcher thread: starts the next write, unless one is in progress or items are still
  /// coming in (then it queues itself again).
  void Flush();

  /// Takes what the window and the queue allow from the planner, queues `done` when everything
  /// came back, and queues a flush when something waits to be written, or else finishes.
  void ProgressLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TakeCursorsLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool WriteWaitingLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  /// Moves the next message's content to `actions`, if any.
  void TakeWriteLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  /// Stops dispatching and delivering; the call finishes with `status` once quiet.
  void StopLocked(grpc::Status status, Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  /// Cursors that may be outstanding now.
  int WindowLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  /// Without `mu_`. Ends with the last use of `this` when it dispatches: a dispatched cursor's
  /// completion may finish the call.
  void Perform(Actions& actions);
  void Invoke(Dispatch dispatch);

  const IngressServices& services_;
  grpc::CallbackServerContext& context_;
  const eofaas::v1::MapRequest& request_;
  const SteadyTime started_;
  const std::shared_ptr<CallGroup> group_ = std::make_shared<CallGroup>();
  // Set by Start, read-only afterwards.
  std::optional<SteadyTime> caller_deadline_;
  absl::Duration item_timeout_;
  int max_attempts_ = 0;
  std::string id_;
  std::string args_json_;
  IngressMetrics::FunctionSeries series_;
  // Set by Plan before `planned_queued_`, read-only afterwards.
  eofaas::v1::MapPlanned planned_;
  // The message being written: only the writer (who set `writing_`) touches it.
  eofaas::v1::MapResponse message_;

  // Requested when the Map stops: a planning in progress ends its listings and lists no more.
  std::stop_source stop_planning_;

  absl::Mutex mu_;
  bool planning_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<Planner> planner_ ABSL_GUARDED_BY(mu_);  // reset once exhausted
  bool exhausted_ ABSL_GUARDED_BY(mu_) = false;
  int window_ ABSL_GUARDED_BY(mu_) = 1;  // the last window, when capacity cannot be read
  int64_t next_index_ ABSL_GUARDED_BY(mu_) = 0;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  // Ordered: items of [next_delivery_, next_index_), empty until they complete.
  int64_t next_delivery_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Item> reorder_ ABSL_GUARDED_BY(mu_);
  // Written in this order: `planned`, the items in delivery order, `done`.
  bool planned_queued_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Item> pending_ ABSL_GUARDED_BY(mu_);
  size_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool done_queued_ ABSL_GUARDED_BY(mu_) = false;
  bool done_written_ ABSL_GUARDED_BY(mu_) = false;
  bool flush_queued_ ABSL_GUARDED_BY(mu_) = false;
  // `pending_` at the flush's previous turn, and the turns it waited.
  size_t flush_seen_ ABSL_GUARDED_BY(mu_) = 0;
  int flush_turns_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  size_t writing_items_ ABSL_GUARDED_BY(mu_) = 0;  // in the message being written
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> stopped_ ABSL_GUARDED_BY(mu_);
  int64_t succeeded_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t failed_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t retried_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace eofaas::proxy
