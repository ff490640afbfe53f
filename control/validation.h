// Validation of Provision requests: every rule that turns bad input into INVALID_ARGUMENT naming
// the field, before anything is stored.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "control/build/template_catalog.h"
#include "eofaas/v1/function.pb.h"

namespace eofaas::control {

struct Limits {
  /// Sum of all file sizes of one function.
  int64_t max_source_bytes = 4 << 20;
  /// Upper bound of scaling.max_replicas.
  int32_t max_replicas = 16;
  /// Upper bound of scaling.target_concurrency.
  int32_t max_concurrency = 1000;
};

/// Checks a function as given to CreateFunction or UpdateFunction; `status` is ignored.
absl::Status ValidateFunction(const eofaas::v1::Function& function,
                              const TemplateCatalog& templates, const Limits& limits);

/// Checks a replica range as given in `scaling` or to ScaleFunction.
absl::Status ValidateReplicas(int32_t min_replicas, int32_t max_replicas, const Limits& limits,
                              absl::string_view field_prefix);

/// A relative path inside the bundle: no absolute paths, no "..", "." or empty segments.
absl::Status ValidateFilePath(absl::string_view path, absl::string_view field);

}  // namespace eofaas::control
