// Child processes: long-running ones in their own session (replicas), and short commands whose
// output is collected and which can be cancelled (builds); and finding them in /proc again.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace eofaas::common {

struct SpawnOptions {
  std::vector<std::string> argv;
  /// The complete environment, "NAME=value" each; nothing is inherited.
  std::vector<std::string> env;
  /// Working directory; empty keeps the parent's.
  std::string cwd;
  /// stdout and stderr are appended to this file; empty sends them to /dev/null.
  std::string output_path;
  /// Soft and hard limits applied in the child before exec: {RLIMIT_*, value}.
  std::vector<std::pair<int, unsigned long>> rlimits;
};

/// Starts a process in a new session (so its pid is also its process-group id and every
/// descendant can be signalled together) with stdin from /dev/null. The child inherits nothing
/// else: no descriptor besides 0-2, no ignored or blocked signal. The caller owns the child and
/// must reap it (waitpid). Errors: INVALID_ARGUMENT for an empty argv, INTERNAL when fork fails,
/// FAILED_PRECONDITION when exec or the child's setup fails (the child's errno is reported).
absl::StatusOr<pid_t> Spawn(const SpawnOptions& options);

/// The fields of /proc/<pid>/stat the process helpers need.
struct ProcStat {
  char state = 0;
  pid_t ppid = 0;
  pid_t pgrp = 0;
  /// A zombie has ended and waits for its parent to reap it.
  bool zombie() const { return state == 'Z' || state == 'X'; }
};

/// Reads /proc/<pid>/stat; empty when the process does not exist.
std::optional<ProcStat> ReadProcStat(pid_t pid);

/// A live process found by FindProcessesWithEnv.
struct FoundProcess {
  pid_t pid = 0;
  ProcStat stat;
  /// Its environment as /proc/<pid>/environ gives it: "NAME=value\0" each.
  std::string environment;
};

/// Scans /proc for the live processes (zombies ignored), this one aside, whose environment holds
/// exactly the entry `entry` ("NAME=value"). Children inherit the environment, so a process that
/// spawns its commands with such an entry finds, after a restart, what they and their
/// descendants left running, whichever process group they are in.
std::vector<FoundProcess> FindProcessesWithEnv(absl::string_view entry);

/// True while a process of the group `pgid` runs. Zombies do not count (an init that never reaps
/// would otherwise keep a dead group "alive"); reap your own children anyway so they do not pile
/// up. Costs one /proc read while the group leader runs, a /proc scan once it is gone. Callers
/// that poll a group keep `*live_member` (0 at first) between calls: the member a scan found is
/// checked first next time, so a group that outlives its leader is scanned only when that member
/// ends too.
bool ProcessGroupAlive(pid_t pgid, pid_t* live_member = nullptr);

struct RunResult {
  /// Exit code when the process exited, -1 otherwise.
  int exit_code = -1;
  /// Terminating signal, 0 when it exited.
  int signal = 0;
  bool timed_out = false;
  bool cancelled = false;
  /// stdout and stderr interleaved as written, cut to the last `max_output_bytes`.
  std::string output;
  bool ok() const { return exit_code == 0; }
};

/// Runs a command to completion, collecting its output. The whole process group is killed when
/// `timeout` passes or `*cancel` becomes true (checked at least every 20 ms). Once the command
/// (the group leader) has ended, its output is read for at most 200 ms more, then whatever it left
/// in its process group is killed; a descendant that left the group keeps running, unread.
absl::StatusOr<RunResult> Run(const SpawnOptions& options, absl::Duration timeout,
                              const std::atomic<bool>* cancel = nullptr,
                              size_t max_output_bytes = 1 << 20);

/// Describes how a process ended: "exited with code 1", "killed by signal 9 (Killed)".
std::string DescribeWaitStatus(int wait_status);

}  // namespace eofaas::common
