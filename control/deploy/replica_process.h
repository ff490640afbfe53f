// One local replica as an operating-system object: its identity (carried in its environment so a
// restarted control plane can find it in /proc), its process group, and its log file.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace eofaas::control {

/// Who a replica is. Written into its environment as EOFAAS_* variables.
struct ReplicaIdentity {
  std::string function;
  std::string deployment;
  int64_t generation = 0;
  int slot = 0;
  int port = 0;
  int concurrency = 1;
  bool operator==(const ReplicaIdentity&) const = default;
};

/// The complete environment of a replica, "NAME=value" each: `user_env`, then the platform's
/// variables (EOFAAS_PORT, EOFAAS_HOST, EOFAAS_CONCURRENCY, EOFAAS_DRAIN_TIMEOUT_MS,
/// EOFAAS_FUNCTION, EOFAAS_GENERATION, EOFAAS_REPLICA, EOFAAS_DEPLOYMENT, EOFAAS_INSTANCE, PATH,
/// HOME, LANG, PYTHONDONTWRITEBYTECODE), which win over user variables of the same name.
std::vector<std::string> ReplicaEnvironment(const ReplicaIdentity& identity,
                                            const std::map<std::string, std::string>& user_env,
                                            absl::string_view instance_id,
                                            int64_t drain_timeout_ms);

/// A running process group whose members carry EOFAAS_INSTANCE=<instance_id>.
struct FoundReplicaGroup {
  pid_t pgid = 0;
  /// The group leader is a child of this process (it can be reaped here).
  bool our_child = false;
  /// Empty when the environment lacks or garbles an EOFAAS_* variable.
  std::optional<ReplicaIdentity> identity;
};

/// Scans /proc for the live process groups of `instance_id`'s replicas (zombies ignored).
std::vector<FoundReplicaGroup> FindReplicaGroups(absl::string_view instance_id);

/// The process group of one replica (its pid is its pgid). Signals go to the whole group:
/// bubblewrap does not forward them, so the outer bwrap dies on SIGTERM while the runtime inside
/// drains. Not thread-safe.
class ReplicaProcess {
 public:
  enum class State {
    kRunning,
    /// Our child, the group leader, has ended but other members still run.
    kLeaderExited,
    /// No member is left.
    kGone,
  };

  /// `own_child`: the leader is our child, so Poll reaps it and learns how it ended.
  ReplicaProcess(pid_t pgid, bool own_child) : pgid_(pgid), own_child_(own_child) {}

  pid_t pgid() const { return pgid_; }

  /// Reaps the leader when it has ended, then checks the group.
  State Poll();

  /// How the leader ended ("exited with code 1", "killed by signal 9 (Killed)"), or "ended" when
  /// that is unknown (an adopted group, or one still running).
  std::string DescribeExit() const;

  /// Sends `signal` to every member of the group.
  void Signal(int signal) const;

 private:
  pid_t pgid_;
  bool own_child_;
  bool leader_reaped_ = false;
  std::optional<int> wait_status_;
  /// A member found alive last time (see common::ProcessGroupAlive).
  pid_t live_member_ = 0;
};

/// The last `max_lines` non-blank lines of the file at `path` (reads at most its last 8 KiB);
/// with `since_prefix`, only lines after the last line that starts with it. Empty when the file
/// cannot be read.
std::vector<std::string> TailLines(const std::string& path, int max_lines,
                                   absl::string_view since_prefix = "");

}  // namespace eofaas::control
