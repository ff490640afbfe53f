// One Map call: plans the cursors on a worker, dispatches them lazily within a window, and
// streams `planned`, one `item` per cursor and `done`, pausing when the client reads slowly.
#pragma once

#include <grpcpp/support/server_callback.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
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
/// Flow control: a cursor is dispatched only while fewer than the window's cursors are
/// outstanding (in flight, or, when `ordered`, waiting for an earlier index) and fewer than
/// `max_queued_events` events wait to be written. So a client that reads slowly pauses dispatch,
/// and memory stays bounded by the window plus the event queue. The window is `max_in_flight`,
/// or the function's current capacity (re-read as the Map goes) when that is 0.
///
/// Ending: after `done` is written the call finishes OK. A cancelled call, or one whose client
/// stopped reading, cancels its call group (every queued or in-flight invocation) and finishes
/// once every dispatched invocation has called back, so no callback outlives the reactor.
///
/// Threads: Start on a gRPC thread, planning on a planner worker, completions on dispatcher
/// threads, write completions and cancellation on gRPC threads. All state is under `mu_`;
/// StartWrite and Finish are called outside it.
class MapReactor final : public grpc::ServerWriteReactor<eofaas::v1::MapResponse> {
 public:
  MapReactor(const IngressServices& services, grpc::CallbackServerContext* context,
             const eofaas::v1::MapRequest* request);

  /// Validates, then queues the planning, or finishes at once with the request's error.
  void Start();

 private:
  /// What to do once `mu_` is released.
  struct Actions {
    std::shared_ptr<CallGroup> cancel;
    const eofaas::v1::MapResponse* write = nullptr;
    bool more_writes = false;
    std::optional<grpc::Status> finish;
  };

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override { delete this; }

  /// On a planner worker: lists the inputs, then queues `planned` and starts dispatching.
  void Plan();
  /// On a dispatcher thread.
  void OnItemDone(int64_t index, eofaas::v1::DataCursor cursor, InvokeOutcome outcome);

  /// Dispatches what the window and the event queue allow, queues `done` when everything came
  /// back, and picks the next write or the finish.
  void ProgressLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DispatchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  /// Stops dispatching and delivering; the call finishes with `status` once quiet.
  void StopLocked(grpc::Status status, Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  /// Cursors that may be outstanding now.
  int WindowLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Perform(Actions& actions);

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

  absl::Mutex mu_;
  bool planning_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<Planner> planner_ ABSL_GUARDED_BY(mu_);  // reset once exhausted
  bool exhausted_ ABSL_GUARDED_BY(mu_) = false;
  int window_ ABSL_GUARDED_BY(mu_) = 1;  // the last window, when capacity cannot be read
  int64_t next_index_ ABSL_GUARDED_BY(mu_) = 0;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  // Ordered: items of [next_delivery_, next_index_), empty until they complete.
  int64_t next_delivery_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<std::optional<eofaas::v1::MapResponse>> reorder_ ABSL_GUARDED_BY(mu_);
  // Events to write; the front one is being written while `writing_`. References to it stay
  // valid while the back grows (std::deque).
  std::deque<eofaas::v1::MapResponse> events_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool done_queued_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> stopped_ ABSL_GUARDED_BY(mu_);
  int64_t succeeded_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t failed_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t retried_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace eofaas::proxy
