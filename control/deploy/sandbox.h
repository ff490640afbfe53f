// How a local replica runs: the command line that confines the template's run command in a
// bubblewrap sandbox, or runs it bare with resource limits when bubblewrap is off or missing.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/subprocess.h"

namespace eofaas::control {

enum class SandboxMode {
  /// The command runs directly, in the bundle directory, with resource limits only.
  kNone,
  /// The command runs under /usr/bin/bwrap: own PID, IPC and UTS namespaces, no capabilities,
  /// read-only system directories, the bundle at /app and the data roots at their own paths;
  /// nothing else of the host file system (the control plane's data, other bundles) is visible.
  kBwrap,
};

/// "bwrap" or "none", for logs.
const char* SandboxModeName(SandboxMode mode);

/// What to run for one replica.
struct SandboxRequest {
  /// The template's run command. A relative program is looked up in the bundle first, then in
  /// /usr/local/bin:/usr/bin:/bin; relative arguments are relative to the bundle root (the
  /// working directory).
  std::vector<std::string> command;
  /// The bundle directory on the host.
  std::string bundle_dir;
  /// Host directories the replica may read (file:// cursors point into them).
  std::vector<std::string> data_roots;
};

/// Returns argv, cwd and rlimits for common::Spawn (the caller adds env and output). Bubblewrap
/// is not given --die-with-parent nor --new-session: replicas outlive a control-plane crash so the
/// next one can adopt them, and a signal to the process group reaches the runtime inside.
/// Errors: INVALID_ARGUMENT for an empty command or a relative bundle_dir, FAILED_PRECONDITION
/// when the program cannot be found. Thread-safe.
absl::StatusOr<common::SpawnOptions> SandboxedCommand(SandboxMode mode,
                                                      const SandboxRequest& request);

/// True when /usr/bin/bwrap exists and can create the namespaces replicas need (it runs a trivial
/// sandbox, which takes a few milliseconds). Thread-safe.
bool BwrapAvailable();

}  // namespace eofaas::control
