#include "proxy/dispatch/retry_policy.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace eofaas::proxy {
namespace {

using Kind = AttemptOutcome::Kind;
using Result = Balancer::Result;

AttemptOutcome Retry(RetryReason reason, Result replica_result, absl::Status status) {
  return {Kind::kRetry, reason, std::move(status), replica_result};
}

AttemptOutcome Fail(absl::Status status, Result replica_result) {
  return {Kind::kFail, RetryReason::kConnect, std::move(status), replica_result};
}

// The replica's own error message when its body is the runtime's error JSON, else the body.
std::string Excerpt(const std::string& body) {
  constexpr size_t kMax = 512;
  std::string message = ParseFunctionError(body, FunctionErrorHeader::kNone).message;
  if (message.size() > kMax) message.resize(kMax);
  return message;
}

}  // namespace

const char* RetryReasonLabel(RetryReason reason) {
  switch (reason) {
    case RetryReason::kConnect:
      return "connect";
    case RetryReason::kReset:
      return "reset";
    case RetryReason::kProtocol:
      return "protocol";
    case RetryReason::kTooManyRequests:
      return "429";
    case RetryReason::kUnavailable:
      return "503";
    case RetryReason::kServerError:
      return "5xx";
    case RetryReason::kDisplaced:
      return "displaced";
  }
  return "unknown";
}

AttemptOutcome ClassifyAttempt(const HttpResult& result, const std::string& replica) {
  switch (result.error) {
    case HttpError::kNone:
      break;
    case HttpError::kClosed:
      return Retry(RetryReason::kReset, Result::kFailure,
                   absl::UnavailableError(absl::StrCat(
                       "replica ", replica, " closed the connection: ", result.detail.message())));
    case HttpError::kProtocol:
      return Retry(
          RetryReason::kProtocol, Result::kFailure,
          absl::UnavailableError(absl::StrCat(
              "replica ", replica, " sent an invalid response: ", result.detail.message())));
    case HttpError::kTimeout:
      return Fail(absl::DeadlineExceededError(
                      absl::StrCat("deadline exceeded waiting for replica ", replica)),
                  Result::kNeutral);
    case HttpError::kAborted:
      return Fail(absl::CancelledError("cancelled"), Result::kNeutral);
    case HttpError::kDisplaced:
      return Retry(RetryReason::kDisplaced, Result::kNeutral,
                   absl::UnavailableError(absl::StrCat(
                       "the connection to replica ", replica,
                       " closed for another request pipelined on it: ", result.detail.message())));
    case HttpError::kBodyTooLarge:
      // The replica works; the result is too large for any of them. Not RESOURCE_EXHAUSTED
      // (HTTP 429, which clients retry): no retry would fit it.
      return Fail(absl::InternalError(absl::StrCat("the result from replica ", replica,
                                                   " is larger than the proxy's limit")),
                  Result::kSuccess);
  }
  const int status = result.status;
  if (result.function_error != FunctionErrorHeader::kNone) {
    return {Kind::kFunctionError, RetryReason::kConnect, absl::OkStatus(), Result::kSuccess};
  }
  if (status >= 200 && status < 300) return {};
  auto answered = [&] {
    return absl::StrCat("replica ", replica, " answered HTTP ", status, ": ", Excerpt(result.body));
  };
  if (status == 429) {
    // Busy, not broken: no strike against it.
    return Retry(RetryReason::kTooManyRequests, Result::kNeutral,
                 absl::ResourceExhaustedError(answered()));
  }
  if (status == 503) {
    return Retry(RetryReason::kUnavailable, Result::kFailure, absl::UnavailableError(answered()));
  }
  if (status >= 500 && status < 600) {
    return Retry(RetryReason::kServerError, Result::kFailure, absl::UnavailableError(answered()));
  }
  if (status == 400 || status == 413) {
    // The replica rejected the request itself (a cursor it cannot read): every replica would.
    return Fail(absl::InvalidArgumentError(answered()), Result::kSuccess);
  }
  return Fail(absl::UnknownError(answered()), Result::kSuccess);
}

AttemptOutcome ConnectFailure(const boost::system::error_code& error, const std::string& replica) {
  return Retry(RetryReason::kConnect, Result::kFailure,
               absl::UnavailableError(
                   absl::StrCat("cannot connect to replica ", replica, ": ", error.message())));
}

RetryBudget::RetryBudget(const common::Clock& clock, RetryBudgetOptions options)
    : clock_(clock),
      per_request_(std::llround(options.ratio * kUnit)),
      per_second_(options.min_per_second * kUnit),
      max_balance_(std::llround(options.max_balance * kUnit)),
      balance_(max_balance_),
      refilled_(clock.Now()) {}

void RetryBudget::OnRequest() { balance_ = std::min(max_balance_, balance_ + per_request_); }

bool RetryBudget::TryRetry() {
  const auto now = clock_.Now();
  const double seconds = std::chrono::duration<double>(now - refilled_).count();
  refilled_ = now;
  const double refill = std::min(seconds * per_second_, static_cast<double>(max_balance_));
  balance_ = std::min(max_balance_, balance_ + static_cast<int64_t>(refill));
  if (balance_ < kUnit) return false;
  balance_ -= kUnit;
  return true;
}

std::chrono::nanoseconds RetryBackoff(const BackoffOptions& options, int retry, uint64_t random) {
  auto delay = options.base;
  for (int i = 1; i < retry && delay < options.max; ++i) delay *= 2;
  delay = std::min(delay, options.max);
  const auto half = delay / 2;
  const uint64_t spread = static_cast<uint64_t>((delay - half).count()) + 1;
  return half + std::chrono::nanoseconds(random % spread);
}

}  // namespace eofaas::proxy
