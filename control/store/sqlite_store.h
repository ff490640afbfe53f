// Store on SQLite in WAL mode: one file under the data dir, one connection behind a mutex.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "control/store/store.h"

struct sqlite3;

namespace eofaas::control {

class SqliteStore final : public Store {
 public:
  /// Opens (creating when missing) the database at `path` and locks it (`path`.lock) for this
  /// process. UNAVAILABLE when it cannot be opened or another process holds it.
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path);
  ~SqliteStore() override;

  absl::Status Insert(const FunctionRecord& record) override;
  absl::Status Update(const FunctionRecord& record) override;
  absl::Status Delete(absl::string_view name) override;
  absl::StatusOr<std::vector<FunctionRecord>> LoadAll() override;
  absl::Status AppendBuildLog(absl::string_view name, int64_t generation,
                              const std::vector<std::string>& lines) override;
  absl::StatusOr<std::vector<std::string>> ReadBuildLog(absl::string_view name, int64_t generation,
                                                        size_t from) override;
  std::string InstanceId() const override { return instance_id_; }

 private:
  SqliteStore(sqlite3* db, int lock_fd) : db_(db), lock_fd_(lock_fd) {}
  absl::Status Exec(const char* sql);

  std::mutex mu_;
  sqlite3* db_;
  const int lock_fd_;
  std::string instance_id_;
};

}  // namespace eofaas::control
