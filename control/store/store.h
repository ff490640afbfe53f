// The Store interface: durable state of eofaas-control. Every transition is written here before
// anyone is told about it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "eofaas/internal/v1/records.pb.h"

namespace eofaas::control {

using FunctionRecord = eofaas::internal::v1::FunctionRecord;

/// Thread-safe. Writes are durable once they return (a process crash loses nothing).
class Store {
 public:
  virtual ~Store() = default;

  /// ALREADY_EXISTS when a record with the same function name exists.
  virtual absl::Status Insert(const FunctionRecord& record) = 0;
  /// Replaces the record of the same name; NOT_FOUND when there is none.
  virtual absl::Status Update(const FunctionRecord& record) = 0;
  /// Removes the record and its build logs; NOT_FOUND when there is none.
  virtual absl::Status Delete(absl::string_view name) = 0;
  /// Every record, sorted by name.
  virtual absl::StatusOr<std::vector<FunctionRecord>> LoadAll() = 0;

  /// Appends lines to the build log of one generation.
  virtual absl::Status AppendBuildLog(absl::string_view name, int64_t generation,
                                      const std::vector<std::string>& lines) = 0;
  /// The lines of one generation's build log from index `from` on.
  virtual absl::StatusOr<std::vector<std::string>> ReadBuildLog(absl::string_view name,
                                                                int64_t generation,
                                                                size_t from) = 0;

  /// A random identifier created with the store: marks the processes this control plane starts.
  virtual std::string InstanceId() const = 0;
};

}  // namespace eofaas::control
