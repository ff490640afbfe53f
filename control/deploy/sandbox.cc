#include "control/deploy/sandbox.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <climits>
#include <filesystem>
#include <string>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace eofaas::control {
namespace {

constexpr char kBwrapPath[] = "/usr/bin/bwrap";
constexpr char kSandboxAppDir[] = "/app";
constexpr std::array<const char*, 3> kSearchPath = {"/usr/local/bin", "/usr/bin", "/bin"};

// Top-level system directories: a symlink into /usr on merged-/usr hosts.
constexpr std::array<const char*, 4> kSystemDirs = {"/bin", "/sbin", "/lib", "/lib64"};

// The few /etc entries runtimes need for TLS, name resolution, users, time zones and the dynamic
// loader; the rest of /etc stays hidden.
constexpr std::array<const char*, 13> kEtcEntries = {
    "/etc/ssl", "/etc/ca-certificates", "/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf",
    "/etc/passwd", "/etc/group", "/etc/localtime", "/etc/alternatives", "/etc/ld.so.cache",
    "/etc/ld.so.conf", "/etc/ld.so.conf.d",
    // PHP's ini files: without them Debian's php-cli loads none of its shared extensions.
    "/etc/php"};

// Limits in both modes. RLIMIT_NPROC is left alone: it counts every process of the user (the
// control plane's threads and all replicas included, and does not bind root), so a useful value
// does not exist. RLIMIT_AS neither: Node and the JVM reserve far more address space than they use.
std::vector<std::pair<int, unsigned long>> ReplicaLimits() {
  return {{RLIMIT_NOFILE, 4096}, {RLIMIT_CORE, 0}};
}

bool IsExecutableFile(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) && access(path.c_str(), X_OK) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

// Where the program is on the host, and where the sandbox sees it.
struct Program {
  std::string host_path;
  std::string sandbox_path;
};

absl::StatusOr<Program> ResolveProgram(const std::string& program, const std::string& bundle_dir) {
  if (absl::StartsWith(program, "/")) return Program{program, program};
  const std::string in_bundle = absl::StrCat(bundle_dir, "/", program);
  if (IsExecutableFile(in_bundle)) {
    return Program{in_bundle, absl::StrCat(kSandboxAppDir, "/", program)};
  }
  if (!absl::StrContains(program, '/')) {
    for (const char* dir : kSearchPath) {
      std::string candidate = absl::StrCat(dir, "/", program);
      if (IsExecutableFile(candidate)) return Program{candidate, candidate};
    }
  }
  return absl::FailedPreconditionError(
      absl::StrCat("run command: ", program, " is neither an executable of the bundle nor on ",
                   "/usr/local/bin:/usr/bin:/bin"));
}

void AddSystemDirs(std::vector<std::string>& argv) {
  argv.insert(argv.end(), {"--ro-bind", "/usr", "/usr"});
  for (const char* dir : kSystemDirs) {
    struct stat info;
    char target[PATH_MAX];
    ssize_t n = -1;
    if (lstat(dir, &info) == 0 && S_ISLNK(info.st_mode)) {
      n = readlink(dir, target, sizeof(target) - 1);
    }
    if (n > 0) {
      argv.insert(argv.end(), {"--symlink", std::string(target, n), dir});
    } else {
      argv.insert(argv.end(), {"--ro-bind-try", dir, dir});
    }
  }
  for (const char* entry : kEtcEntries) argv.insert(argv.end(), {"--ro-bind-try", entry, entry});
}

}  // namespace

const char* SandboxModeName(SandboxMode mode) {
  return mode == SandboxMode::kBwrap ? "bwrap" : "none";
}

absl::StatusOr<common::SpawnOptions> SandboxedCommand(SandboxMode mode,
                                                      const SandboxRequest& request) {
  if (request.command.empty()) return absl::InvalidArgumentError("run command is empty");
  if (!absl::StartsWith(request.bundle_dir, "/")) {
    return absl::InvalidArgumentError(
        absl::StrCat("bundle_dir must be absolute: ", request.bundle_dir));
  }
  if (!IsDirectory(request.bundle_dir)) {
    return absl::FailedPreconditionError(
        absl::StrCat("bundle directory missing: ", request.bundle_dir));
  }
  auto program = ResolveProgram(request.command.front(), request.bundle_dir);
  if (!program.ok()) return program.status();

  common::SpawnOptions spawn;
  spawn.rlimits = ReplicaLimits();
  if (mode == SandboxMode::kNone) {
    spawn.argv = request.command;
    spawn.argv.front() = program->host_path;
    spawn.cwd = request.bundle_dir;
    return spawn;
  }

  std::vector<std::string>& argv = spawn.argv;
  argv = {kBwrapPath,
          "--unshare-pid",
          "--unshare-ipc",
          "--unshare-uts",
          "--unshare-cgroup-try",
          "--cap-drop",
          "ALL"};
  AddSystemDirs(argv);
  argv.insert(argv.end(), {"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"});
  argv.insert(argv.end(), {"--ro-bind", request.bundle_dir, kSandboxAppDir});
  // After the /tmp tmpfs, so a data root under /tmp is mounted on top of it. A missing root is
  // skipped rather than failing every replica; reads under it then fail with a clear error. A
  // root reached through symlinks is also mounted at its real path, which is the one the proxy
  // names in the cursors it plans (it resolves every path it checks).
  for (const auto& root : request.data_roots) {
    if (!absl::StartsWith(root, "/")) {
      return absl::InvalidArgumentError(absl::StrCat("data root must be absolute: ", root));
    }
    argv.insert(argv.end(), {"--ro-bind-try", root, root});
    std::error_code error;
    const std::string real = std::filesystem::canonical(root, error).string();
    if (!error && real != root) argv.insert(argv.end(), {"--ro-bind-try", real, real});
  }
  argv.insert(argv.end(), {"--chdir", kSandboxAppDir, "--", program->sandbox_path});
  argv.insert(argv.end(), request.command.begin() + 1, request.command.end());
  return spawn;
}

bool BwrapAvailable() {
  if (access(kBwrapPath, X_OK) != 0) return false;
  common::SpawnOptions probe;
  probe.argv = {
      kBwrapPath, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--ro-bind", "/", "/",
      "--",       "/usr/bin/true"};
  probe.env = {"PATH=/usr/bin:/bin"};
  auto result = common::Run(probe, absl::Seconds(10));
  return result.ok() && result->ok();
}

}  // namespace eofaas::control
