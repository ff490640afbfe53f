// Checks of Invoke and Map requests that need neither the file system nor the dispatcher: the
// function name, durations and limits. Cursors and inputs are checked by the planner's room
// (ValidateCursor, Planner::Create), which touches the data roots.
#pragma once

#include <google/protobuf/duration.pb.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "eofaas/v1/invoker.pb.h"

namespace eofaas::proxy {

/// A google.protobuf.Duration that must be zero or positive. INVALID_ARGUMENT naming `field` for
/// a negative one or one outside the protobuf Duration range (|seconds| <= 315576000000, nanos
/// in [0, 1e9) for a positive duration).
absl::StatusOr<absl::Duration> NonNegativeDuration(const google::protobuf::Duration& duration,
                                                   absl::string_view field);

/// `function` an RFC 1123 name, `timeout` non-negative. INVALID_ARGUMENT naming the field.
absl::Status ValidateInvokeRequest(const eofaas::v1::InvokeRequest& request);

/// `function` an RFC 1123 name, `max_in_flight` in [0, max_in_flight_limit], `max_attempts`
/// and `item_timeout` non-negative. INVALID_ARGUMENT naming the field. Inputs and partitioning
/// are the planner's to check.
absl::Status ValidateMapRequest(const eofaas::v1::MapRequest& request, int max_in_flight_limit);

}  // namespace eofaas::proxy
