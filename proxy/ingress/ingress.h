// What the proxy's two fronts share: the gRPC Invoker (invoker_service.h) and the HTTP/1.1
// ingress (http_ingress.h) validate, plan and dispatch through the same services, so a request
// means the same whichever way it arrives.
#pragma once

#include <cstddef>

#include "absl/time/time.h"
#include "common/worker_pool.h"
#include "proxy/dispatch/dispatcher.h"
#include "proxy/ingress/ingress_metrics.h"
#include "proxy/plan/checked_files.h"
#include "proxy/plan/data_roots.h"
#include "proxy/plan/planner.h"

namespace eofaas::proxy {

struct IngressOptions {
  /// The budget of an invocation (an Invoke, or one Map item) when neither the request nor the
  /// caller's deadline bounds it: every call to a replica has a deadline.
  absl::Duration default_timeout = absl::Minutes(5);
  /// Attempts per invocation for Invoke, and for Map when `max_attempts` is 0.
  int max_attempts = 3;
  /// The largest `max_in_flight` a Map may ask for; a Map without one uses its function's
  /// capacity, capped here too.
  int max_in_flight_limit = 1024;
  /// Map items waiting for a slow client beyond which the Map dispatches no further cursor.
  /// With the items in flight, this bounds a Map's memory.
  size_t max_queued_items = 64;
  /// Threads that plan Maps (listing blocks on the file system and on HEAD requests), and the
  /// plans that may wait for one; beyond it Map fails with RESOURCE_EXHAUSTED.
  size_t planner_threads = 2;
  size_t max_queued_plans = 64;
  /// Threads that check Invoke's file:// cursors against data roots where lstat may block (on
  /// NFS, SMB, FUSE, ...: DataRoots::MayBlock), and the checks that may wait; beyond it Invoke
  /// fails with RESOURCE_EXHAUSTED. Cursors under local roots are checked on the calling thread.
  size_t cursor_check_threads = 2;
  size_t max_queued_cursor_checks = 4096;
  /// How long a file:// URI that passed its check is taken again without a new one
  /// (CheckedFiles); zero checks every cursor.
  absl::Duration cursor_check_ttl = absl::Seconds(1);
};

/// What the calls use; owned by an Ingress, which outlives every call.
struct IngressServices {
  Dispatcher& dispatcher;
  const DataRoots& roots;
  CheckedFiles& checked_files;
  const Listers& listers;
  common::WorkerPool& planners;
  common::WorkerPool& cursor_checks;
  IngressMetrics& metrics;
  const IngressOptions& options;
};

/// Owns the data roots with their checked files, the listers' table, the options and the worker
/// pools behind IngressServices. `dispatcher`, the listers and `metrics` must outlive it, and it
/// must outlive both fronts. The destructor waits for queued cursor checks and plans.
class Ingress {
 public:
  /// `roots` hold Invoke's file:// cursors; `listers` list Map inputs (the file lister should
  /// use the same roots).
  Ingress(Dispatcher& dispatcher, DataRoots roots, Listers listers, IngressMetrics& metrics,
          IngressOptions options = {});

  const IngressServices& services() const { return services_; }

 private:
  const DataRoots roots_;
  const Listers listers_;
  const IngressOptions options_;
  CheckedFiles checked_files_;
  const IngressServices services_;
  // After services_, so that they are destroyed first: their destructors run the tasks still
  // queued, which use services_.
  common::WorkerPool planners_;
  common::WorkerPool cursor_checks_;
};

}  // namespace eofaas::proxy
