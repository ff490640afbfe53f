// The one mapping from eofaas's absl::Status values to gRPC status codes (see DESIGN.md, Errors).
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace eofaas::common {

/// Converts a domain status to the gRPC status a client sees. Codes map one to one (absl and gRPC
/// share their numbering); the message is kept verbatim.
grpc::Status ToGrpcStatus(const absl::Status& status);

/// The code name as go-grpc-prometheus spells it in the grpc_code label ("OK", "NotFound", ...).
const char* GrpcCodeName(grpc::StatusCode code);

}  // namespace eofaas::common
