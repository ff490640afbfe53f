#include "control/store/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace eofaas::control {
namespace {

constexpr const char* kSchema = R"sql(
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS functions (name TEXT PRIMARY KEY, record BLOB NOT NULL);
  CREATE TABLE IF NOT EXISTS build_logs (
    name TEXT NOT NULL, generation INTEGER NOT NULL, seq INTEGER NOT NULL, line TEXT NOT NULL,
    PRIMARY KEY (name, generation, seq));
)sql";

// The one mapping from SQLite result codes to statuses.
absl::Status StoreStatus(sqlite3* db, int rc) {
  if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return absl::OkStatus();
  std::string message = absl::StrCat("store: ", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
      return absl::UnavailableError(message);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(message);
    case SQLITE_CONSTRAINT:
      return absl::AlreadyExistsError(message);
    default:
      return absl::InternalError(message);
  }
}

// A prepared statement that finalizes itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& Bind(int index, absl::string_view text) {
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& BindBlob(int index, const std::string& blob) {
    sqlite3_bind_blob(stmt_, index, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& Bind(int index, int64_t value) {
    sqlite3_bind_int64(stmt_, index, value);
    return *this;
  }
  /// SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return rc_ = sqlite3_step(stmt_); }
  int64_t ColumnInt(int index) const { return sqlite3_column_int64(stmt_, index); }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  std::string Column(int index) const {
    const void* data = sqlite3_column_blob(stmt_, index);
    return std::string(static_cast<const char*>(data), sqlite3_column_bytes(stmt_, index));
  }
  absl::Status Check(int rc) const { return StoreStatus(db_, rc); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

std::string RandomId() {
  std::random_device device;
  return absl::StrFormat("%08x%08x", device(), device());
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path) {
  // WAL databases take no lock that keeps a second process out: this file does, for as long as
  // the store is open (two control planes on one data dir would fight over its replicas).
  const std::string lock_path = path + ".lock";
  int lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (lock_fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot open ", lock_path, ": ", strerror(errno)));
  }
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    close(lock_fd);
    return absl::UnavailableError(
        absl::StrCat("store ", path, " is in use by another process (", lock_path, " is locked)"));
  }
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    close(lock_fd);
    return absl::UnavailableError(absl::StrCat("cannot open store ", path, ": ", message));
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(db, lock_fd));
  sqlite3_busy_timeout(db, 5000);
  // WAL with synchronous=NORMAL: a committed transaction survives a crash of this process
  // (kill -9); only an OS crash or power loss may drop the last commits.
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                             "PRAGMA foreign_keys=ON", kSchema}) {
    if (auto status = store->Exec(pragma); !status.ok()) return status;
  }
  Statement select(db, "SELECT value FROM meta WHERE key = 'instance_id'");
  if (select.Step() == SQLITE_ROW) {
    store->instance_id_ = select.Column(0);
  } else {
    store->instance_id_ = RandomId();
    Statement insert(db, "INSERT INTO meta (key, value) VALUES ('instance_id', ?)");
    insert.Bind(1, store->instance_id_);
    if (auto status = insert.Check(insert.Step()); !status.ok()) return status;
  }
  return store;
}

SqliteStore::~SqliteStore() {
  sqlite3_close(db_);
  close(lock_fd_);
}

absl::Status SqliteStore::Exec(const char* sql) {
  return StoreStatus(db_, sqlite3_exec(db_, sql, nullptr, nullptr, nullptr));
}

absl::Status SqliteStore::Insert(const FunctionRecord& record) {
  std::lock_guard lock(mu_);
  Statement stmt(db_, "INSERT INTO functions (name, record) VALUES (?, ?)");
  stmt.Bind(1, record.function().name()).BindBlob(2, record.SerializeAsString());
  absl::Status status = stmt.Check(stmt.Step());
  if (absl::IsAlreadyExists(status)) {
    return absl::AlreadyExistsError(
        absl::StrCat("function \"", record.function().name(), "\" already exists"));
  }
  return status;
}

absl::Status SqliteStore::Update(const FunctionRecord& record) {
  std::lock_guard lock(mu_);
  Statement stmt(db_, "UPDATE functions SET record = ? WHERE name = ?");
  stmt.BindBlob(1, record.SerializeAsString()).Bind(2, record.function().name());
  if (auto status = stmt.Check(stmt.Step()); !status.ok()) return status;
  if (sqlite3_changes(db_) == 0) {
    return absl::NotFoundError(absl::StrCat("function \"", record.function().name(), "\""));
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::Delete(absl::string_view name) {
  std::lock_guard lock(mu_);
  if (auto status = Exec("BEGIN IMMEDIATE"); !status.ok()) return status;
  Statement logs(db_, "DELETE FROM build_logs WHERE name = ?");
  logs.Bind(1, name);
  Statement function(db_, "DELETE FROM functions WHERE name = ?");
  function.Bind(1, name);
  absl::Status status = logs.Check(logs.Step());
  if (status.ok()) status = function.Check(function.Step());
  if (status.ok() && sqlite3_changes(db_) == 0) {
    status = absl::NotFoundError(absl::StrCat("function \"", name, "\""));
  }
  absl::Status end = Exec(status.ok() ? "COMMIT" : "ROLLBACK");
  return status.ok() ? end : status;
}

absl::StatusOr<std::vector<FunctionRecord>> SqliteStore::LoadAll() {
  std::lock_guard lock(mu_);
  Statement stmt(db_, "SELECT name, record FROM functions ORDER BY name");
  std::vector<FunctionRecord> records;
  int rc;
  while ((rc = stmt.Step()) == SQLITE_ROW) {
    FunctionRecord record;
    if (!record.ParseFromString(stmt.Column(1))) {
      return absl::DataLossError(absl::StrCat("store: unreadable record for ", stmt.Column(0)));
    }
    records.push_back(std::move(record));
  }
  if (auto status = stmt.Check(rc); !status.ok()) return status;
  return records;
}

absl::Status SqliteStore::AppendBuildLog(absl::string_view name, int64_t generation,
                                         const std::vector<std::string>& lines) {
  if (lines.empty()) return absl::OkStatus();
  std::lock_guard lock(mu_);
  if (auto status = Exec("BEGIN IMMEDIATE"); !status.ok()) return status;
  Statement next(db_,
                 "SELECT COALESCE(MAX(seq) + 1, 0) FROM build_logs WHERE name = ? AND "
                 "generation = ?");
  next.Bind(1, name).Bind(2, generation);
  absl::Status status = next.Check(next.Step());
  int64_t seq = status.ok() ? next.ColumnInt(0) : 0;
  next.Reset();  // a statement left active would keep the transaction from committing cleanly
  Statement insert(db_, "INSERT INTO build_logs (name, generation, seq, line) VALUES (?, ?, ?, ?)");
  for (const auto& line : lines) {
    if (!status.ok()) break;
    insert.Reset();
    insert.Bind(1, name).Bind(2, generation).Bind(3, seq++).Bind(4, line);
    status = insert.Check(insert.Step());
  }
  absl::Status end = Exec(status.ok() ? "COMMIT" : "ROLLBACK");
  return status.ok() ? end : status;
}

absl::StatusOr<std::vector<std::string>> SqliteStore::ReadBuildLog(absl::string_view name,
                                                                   int64_t generation,
                                                                   size_t from) {
  std::lock_guard lock(mu_);
  Statement stmt(db_,
                 "SELECT line FROM build_logs WHERE name = ? AND generation = ? AND seq >= ? "
                 "ORDER BY seq");
  stmt.Bind(1, name).Bind(2, generation).Bind(3, static_cast<int64_t>(from));
  std::vector<std::string> lines;
  int rc;
  while ((rc = stmt.Step()) == SQLITE_ROW) lines.push_back(stmt.Column(0));
  if (auto status = stmt.Check(rc); !status.ok()) return status;
  return lines;
}

}  // namespace eofaas::control
