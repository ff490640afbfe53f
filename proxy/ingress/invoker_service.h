// The gRPC ingress of eofaas-proxy: eofaas.v1.Invoker. Invoke runs one cursor, Map plans a data
// set and streams one item per cursor; both hand their invocations to the Dispatcher. The service
// translates messages and statuses only: validation lives in request_validation.h and the
// planner's room, the work in the reactors (invoke_reactor.h, map_reactor.h).
#pragma once

#include <cstddef>

#include "absl/time/time.h"
#include "common/worker_pool.h"
#include "eofaas/v1/invoker.grpc.pb.h"
#include "proxy/dispatch/dispatcher.h"
#include "proxy/ingress/ingress_metrics.h"
#include "proxy/plan/data_roots.h"
#include "proxy/plan/planner.h"

namespace eofaas::proxy {

struct InvokerOptions {
  /// The budget of an invocation (an Invoke, or one Map item) when neither the request nor the
  /// caller's deadline bounds it: every call to a replica has a deadline.
  absl::Duration default_timeout = absl::Minutes(5);
  /// Attempts per invocation for Invoke, and for Map when `max_attempts` is 0.
  int max_attempts = 3;
  /// The largest `max_in_flight` a Map may ask for; a Map without one uses its function's
  /// capacity, capped here too.
  int max_in_flight_limit = 1024;
  /// Map events waiting for a slow client beyond which the Map dispatches no further cursor.
  /// With the items in flight, this bounds a Map's memory.
  size_t max_queued_events = 64;
  /// Threads that plan Maps (listing blocks on the file system and on HEAD requests), and the
  /// plans that may wait for one; beyond it Map fails with RESOURCE_EXHAUSTED.
  size_t planner_threads = 2;
  size_t max_queued_plans = 64;
  /// Threads that check Invoke's file:// cursors against the data roots (lstat, readlink), and
  /// the checks that may wait; beyond it Invoke fails with RESOURCE_EXHAUSTED.
  size_t cursor_check_threads = 2;
  size_t max_queued_cursor_checks = 4096;
};

/// What the reactors use; owned by InvokerService, which outlives every call.
struct IngressServices {
  Dispatcher& dispatcher;
  const DataRoots& roots;
  const Listers& listers;
  common::WorkerPool& planners;
  common::WorkerPool& cursor_checks;
  IngressMetrics& metrics;
  const InvokerOptions& options;
};

/// Handlers never block: a file:// cursor is checked on a worker, a Map is planned on one, and
/// invocations complete on the dispatcher's threads. Thread-safe. `dispatcher`, the listers and
/// `metrics` must outlive the service, and the service the gRPC server that serves it (the
/// server's Shutdown ends every call first). The destructor waits for queued cursor checks and
/// plans.
class InvokerService final : public eofaas::v1::Invoker::CallbackService {
 public:
  /// `roots` hold Invoke's file:// cursors; `listers` list Map inputs (the file lister should
  /// use the same roots).
  InvokerService(Dispatcher& dispatcher, DataRoots roots, Listers listers, IngressMetrics& metrics,
                 InvokerOptions options = {});

  /// INVALID_ARGUMENT naming the field (function, timeout, cursor.*, args), NOT_FOUND for an
  /// unknown function, PERMISSION_DENIED for a file outside the data roots, then the
  /// dispatcher's statuses. A handler's error is an OK call with `error` set.
  grpc::ServerUnaryReactor* Invoke(grpc::CallbackServerContext* context,
                                   const eofaas::v1::InvokeRequest* request,
                                   eofaas::v1::InvokeResponse* response) override;

  /// `planned`, then one `item` per cursor (a cursor that could not be run is an item with
  /// `failure`), then `done`; the stream ends OK. In `done`, `succeeded` counts the items with a
  /// result, `failed` the others, and `retried` the items that took more than one attempt. Request
  /// errors end it before `planned` with the codes of Invoke (inputs and partitioning named as the
  /// planner names them).
  grpc::ServerWriteReactor<eofaas::v1::MapResponse>* Map(
      grpc::CallbackServerContext* context, const eofaas::v1::MapRequest* request) override;

 private:
  const DataRoots roots_;
  const Listers listers_;
  const InvokerOptions options_;
  const IngressServices services_;
  // After services_, so that they are destroyed first: their destructors run the tasks still
  // queued, which use services_.
  common::WorkerPool planners_;
  common::WorkerPool cursor_checks_;
};

}  // namespace eofaas::proxy
