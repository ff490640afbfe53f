// The dispatch contract: run one invocation of a function on one of its replicas, with retries,
// a deadline and a bounded queue. Ingress (Invoke, Map) calls it; discovery feeds it replicas.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proxy/discovery/endpoint_sink.h"
#include "proxy/dispatch/balancer.h"
#include "proxy/dispatch/call_group.h"
#include "proxy/dispatch/response_parser.h"

namespace eofaas::proxy {

/// One invocation to run.
struct Invocation {
  /// The attempt-independent part of the /invoke body, from InvokeBodyPrefix (envelope.h).
  std::string body_prefix;
  /// When the invocation began (its request arrived): its outcome's duration counts from here.
  std::chrono::steady_clock::time_point start;
  /// The whole budget, queueing and retries included; the replica sees what remains of it as
  /// `deadline_ms`.
  std::chrono::steady_clock::time_point deadline;
  /// Attempts on replicas, the first included; values below 1 count as 1.
  int max_attempts = 3;
  /// Optional: cancelling the group cancels this invocation.
  std::shared_ptr<CallGroup> group;
  /// Set by a caller that bounds its own invocations (a Map keeps at most its window of items in
  /// flight): such an invocation waits in the function's queue even when the queue is full, since
  /// the queue's bound is there for callers that have none.
  bool bounded_by_caller = false;
};

/// How an invocation ended.
struct InvokeOutcome {
  /// OK when a replica answered: `error` set is a function error, otherwise `result` holds the
  /// handler's bytes. Otherwise why no answer came: NOT_FOUND (unknown function), UNAVAILABLE (no
  /// replica, or the last transport failure), RESOURCE_EXHAUSTED (queue full, or every replica
  /// busy), DEADLINE_EXCEEDED, CANCELLED, INVALID_ARGUMENT (the replica rejected the request).
  absl::Status status;
  std::string result;
  std::optional<FunctionError> error;
  /// host:port of the replica of the last attempt; empty when none was tried.
  std::string replica;
  int attempts = 0;
  std::chrono::nanoseconds duration{0};
};

using InvokeCallback = absl::AnyInvocable<void(InvokeOutcome) &&>;

/// The invocations of one function at a moment.
struct FunctionLoad {
  std::string function;
  /// Running on replicas.
  int in_flight = 0;
  /// Waiting for a replica.
  int queued = 0;
  bool operator==(const FunctionLoad&) const = default;
};

/// Thread-safe.
/// Discovery feeds it as an EndpointSink: Update makes a function known (with no replicas its
/// invocations fail with UNAVAILABLE); Remove forgets it (queued invocations fail with NOT_FOUND,
/// those on a replica finish).
class Dispatcher : public EndpointSink {
 public:
  /// Runs `invocation` on a replica of `function`. `done` is called exactly once, on one of the
  /// dispatcher's threads and never from inside Invoke.
  virtual void Invoke(std::string_view function, Invocation invocation, InvokeCallback done) = 0;

  /// Runs `task` on one of the dispatcher's threads after the callbacks already due there: when
  /// several invocations complete together, their callbacks all run first, so that a caller can
  /// act once for all of them (Map sends their items in one message). Never inline.
  virtual void Defer(absl::AnyInvocable<void() &&> task) = 0;

  /// The invocations `function` can run at once: the concurrency of its replicas that are not
  /// ejected. NOT_FOUND for an unknown function.
  virtual absl::StatusOr<int> Capacity(std::string_view function) const = 0;

  /// The functions with invocations in flight or queued, and how many.
  virtual std::vector<FunctionLoad> Load() const = 0;
};

}  // namespace eofaas::proxy
