#include "proxy/ingress/request_validation.h"

#include "absl/strings/str_cat.h"
#include "common/names.h"

namespace eofaas::proxy {
namespace {

// The range google.protobuf.Duration allows: about 10,000 years.
constexpr int64_t kMaxDurationSeconds = 315'576'000'000;

}  // namespace

absl::StatusOr<absl::Duration> NonNegativeDuration(const google::protobuf::Duration& duration,
                                                   absl::string_view field) {
  const int64_t seconds = duration.seconds();
  const int32_t nanos = duration.nanos();
  if (seconds < 0 || nanos < 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must not be negative"));
  }
  if (seconds > kMaxDurationSeconds || nanos >= 1'000'000'000) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": not a valid duration"));
  }
  return absl::Seconds(seconds) + absl::Nanoseconds(nanos);
}

absl::Status ValidateInvokeRequest(const eofaas::v1::InvokeRequest& request) {
  if (auto status = common::ValidateFunctionName(request.function(), "function"); !status.ok()) {
    return status;
  }
  return NonNegativeDuration(request.timeout(), "timeout").status();
}

absl::Status ValidateMapRequest(const eofaas::v1::MapRequest& request, int max_in_flight_limit) {
  if (auto status = common::ValidateFunctionName(request.function(), "function"); !status.ok()) {
    return status;
  }
  if (request.max_in_flight() < 0 || request.max_in_flight() > max_in_flight_limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_in_flight: must be in [0, ", max_in_flight_limit, "], got ", request.max_in_flight()));
  }
  if (request.max_attempts() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_attempts: must not be negative, got ", request.max_attempts()));
  }
  return NonNegativeDuration(request.item_timeout(), "item_timeout").status();
}

}  // namespace eofaas::proxy
