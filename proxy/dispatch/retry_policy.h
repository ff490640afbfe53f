// When an invocation is tried again on another replica, and how often: the classification of one
// attempt's result, the retry budget that keeps retries from multiplying load, and the backoff.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "common/clock.h"
#include "proxy/dispatch/balancer.h"
#include "proxy/dispatch/http_client_connection.h"

namespace eofaas::proxy {

/// Why an attempt is retried; the `reason` label of eofaas_proxy_retries_total.
enum class RetryReason {
  kConnect,          ///< "connect": the connection could not be opened.
  kReset,            ///< "reset": closed or reset before the response was complete.
  kProtocol,         ///< "protocol": the response was not valid HTTP.
  kTooManyRequests,  ///< "429": the replica is at its concurrency.
  kUnavailable,      ///< "503": the replica is starting or draining.
  kServerError,      ///< "5xx": any other 5xx without the function-error header.
  kDisplaced,        ///< "displaced": another request pipelined on its connection closed it; sent
                     ///< again on a connection of its own, without counting an attempt.
};
inline constexpr std::array kRetryReasons = {
    RetryReason::kConnect,         RetryReason::kReset,       RetryReason::kProtocol,
    RetryReason::kTooManyRequests, RetryReason::kUnavailable, RetryReason::kServerError,
    RetryReason::kDisplaced};
const char* RetryReasonLabel(RetryReason reason);

/// How one attempt on a replica ended.
struct AttemptOutcome {
  enum class Kind {
    kResult,         ///< 2xx: the body is the handler's result.
    kFunctionError,  ///< The function-error header: never retried.
    kRetry,          ///< Worth trying on another replica.
    kFail,           ///< Final: another replica would answer the same.
  };
  Kind kind = Kind::kResult;
  RetryReason reason = RetryReason::kConnect;  ///< for kRetry
  absl::Status status;                         ///< for kRetry and kFail: what the caller sees
  Balancer::Result replica_result = Balancer::Result::kSuccess;
};

/// Classifies the result of a round trip to `replica`. Deadline and abort map to
/// DEADLINE_EXCEEDED and CANCELLED (the dispatcher knows better and overrides them).
AttemptOutcome ClassifyAttempt(const HttpResult& result, const std::string& replica);

/// The outcome of an attempt whose connection could not be opened.
AttemptOutcome ConnectFailure(const boost::system::error_code& error, const std::string& replica);

struct RetryBudgetOptions {
  /// Each request adds this many retries to the budget (retries ≤ 20% of requests)...
  double ratio = 0.2;
  /// ...and time adds this many per second, so that a quiet function can still retry.
  double min_per_second = 10;
  /// The budget never holds more than this (the largest burst of retries); it starts full.
  double max_balance = 100;
};

/// A token bucket in the manner of Finagle's RetryBudget and Envoy's retry budget: retries stay a
/// fraction of the traffic, so a failing replica set does not see its load multiplied.
/// Thread-compatible.
class RetryBudget {
 public:
  RetryBudget(const common::Clock& clock, RetryBudgetOptions options);
  /// A new request.
  void OnRequest();
  /// Takes one retry from the budget; false when it is spent.
  bool TryRetry();

 private:
  // In millionths of a retry, so that sums of fractions stay exact.
  static constexpr int64_t kUnit = 1'000'000;

  const common::Clock& clock_;
  const int64_t per_request_;
  const double per_second_;
  const int64_t max_balance_;
  int64_t balance_;
  common::Clock::TimePoint refilled_;
};

struct BackoffOptions {
  std::chrono::nanoseconds base = std::chrono::milliseconds(10);
  std::chrono::nanoseconds max = std::chrono::seconds(1);
};

/// The wait before retry number `retry` (1 for the first): base·2^(retry-1) capped at max, then
/// jittered uniformly down to half ("equal jitter"), from the random value `random`.
std::chrono::nanoseconds RetryBackoff(const BackoffOptions& options, int retry, uint64_t random);

}  // namespace eofaas::proxy
