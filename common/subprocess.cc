#include "common/subprocess.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace eofaas::common {
namespace {

// Everything the child needs is prepared before fork: after fork only async-signal-safe calls.
struct PreparedArgs {
  std::vector<char*> argv;
  std::vector<char*> env;
};

PreparedArgs Prepare(const SpawnOptions& options) {
  PreparedArgs prepared;
  for (const auto& arg : options.argv) prepared.argv.push_back(const_cast<char*>(arg.c_str()));
  prepared.argv.push_back(nullptr);
  for (const auto& var : options.env) prepared.env.push_back(const_cast<char*>(var.c_str()));
  prepared.env.push_back(nullptr);
  return prepared;
}

// Runs in the child: set up and exec, or report errno through `error_fd` and _exit.
[[noreturn]] void ExecChild(const SpawnOptions& options, const PreparedArgs& prepared,
                            int output_fd, int error_fd) {
  setsid();
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  int null_fd = open("/dev/null", O_RDWR);
  dup2(null_fd, STDIN_FILENO);
  int out = output_fd >= 0 ? output_fd : null_fd;
  dup2(out, STDOUT_FILENO);
  dup2(out, STDERR_FILENO);
  for (const auto& [resource, value] : options.rlimits) {
    rlimit limit{value, value};
    setrlimit(resource, &limit);
  }
  if (!options.cwd.empty() && chdir(options.cwd.c_str()) != 0) {
    int err = errno;
    (void)!write(error_fd, &err, sizeof(err));
    _exit(127);
  }
  execve(prepared.argv[0], prepared.argv.data(), prepared.env.data());
  int err = errno;
  (void)!write(error_fd, &err, sizeof(err));
  _exit(127);
}

absl::StatusOr<pid_t> SpawnWithOutputFd(const SpawnOptions& options, int output_fd) {
  if (options.argv.empty()) return absl::InvalidArgumentError("spawn: empty argv");
  PreparedArgs prepared = Prepare(options);
  int error_pipe[2];
  if (pipe2(error_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(error_pipe[0]);
    close(error_pipe[1]);
    return absl::InternalError(absl::StrCat("fork: ", strerror(err)));
  }
  if (pid == 0) {
    close(error_pipe[0]);
    ExecChild(options, prepared, output_fd, error_pipe[1]);
  }
  close(error_pipe[1]);
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(error_pipe[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  close(error_pipe[0]);
  if (n == sizeof(child_errno)) {
    waitpid(pid, nullptr, 0);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot run ", options.argv[0], ": ", strerror(child_errno)));
  }
  return pid;
}

}  // namespace

absl::StatusOr<pid_t> Spawn(const SpawnOptions& options) {
  int output_fd = -1;
  if (!options.output_path.empty()) {
    output_fd = open(options.output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (output_fd < 0) {
      return absl::InternalError(absl::StrCat("open ", options.output_path, ": ", strerror(errno)));
    }
  }
  auto pid = SpawnWithOutputFd(options, output_fd);
  if (output_fd >= 0) close(output_fd);
  return pid;
}

std::optional<ProcStat> ReadProcStat(pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buffer[512];
  ssize_t n = read(fd, buffer, sizeof(buffer) - 1);
  close(fd);
  if (n <= 0) return std::nullopt;
  buffer[n] = '\0';
  // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so parse after the
  // last ')'.
  const char* rest = strrchr(buffer, ')');
  ProcStat stat;
  if (rest == nullptr || sscanf(rest + 1, " %c %d %d", &stat.state, &stat.ppid, &stat.pgrp) != 3) {
    return std::nullopt;
  }
  return stat;
}

bool ProcessGroupAlive(pid_t pgid) {
  if (pgid <= 0) return false;
  if (kill(-pgid, 0) != 0 && errno != EPERM) return false;
  // kill() also succeeds for a group of zombies, which pile up when the members' parent (an init
  // that does not reap, or a process that has not reaped yet) leaves them: look for a live member,
  // the leader first since it is usually the one still running.
  auto is_live_member = [pgid](pid_t pid) {
    auto stat = ReadProcStat(pid);
    return stat && stat->pgrp == pgid && !stat->zombie();
  };
  if (is_live_member(pgid)) return true;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return true;  // cannot tell: trust kill()
  bool alive = false;
  while (dirent* entry = readdir(proc)) {
    pid_t pid = static_cast<pid_t>(atoi(entry->d_name));
    if (pid > 0 && is_live_member(pid)) {
      alive = true;
      break;
    }
  }
  closedir(proc);
  return alive;
}

absl::StatusOr<RunResult> Run(const SpawnOptions& options, absl::Duration timeout,
                              const std::atomic<bool>* cancel, size_t max_output_bytes) {
  int out_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  auto pid = SpawnWithOutputFd(options, out_pipe[1]);
  close(out_pipe[1]);
  if (!pid.ok()) {
    close(out_pipe[0]);
    return pid.status();
  }
  RunResult result;
  const absl::Time deadline = absl::Now() + timeout;
  bool killed = false;
  char buffer[16384];
  for (;;) {
    pollfd pfd{out_pipe[0], POLLIN, 0};
    int ready = poll(&pfd, 1, 20);
    if (ready > 0) {
      ssize_t n = read(out_pipe[0], buffer, sizeof(buffer));
      if (n > 0) {
        result.output.append(buffer, n);
        if (result.output.size() > max_output_bytes) {
          result.output.erase(0, result.output.size() - max_output_bytes);
        }
        continue;
      }
      if (n == 0) break;  // every writer closed: the command and its children are done
      if (errno != EINTR && errno != EAGAIN) break;
    }
    if (!killed && cancel != nullptr && cancel->load()) {
      result.cancelled = killed = true;
      kill(-*pid, SIGKILL);
    } else if (!killed && absl::Now() >= deadline) {
      result.timed_out = killed = true;
      kill(-*pid, SIGKILL);
    }
  }
  close(out_pipe[0]);
  int wait_status = 0;
  while (waitpid(*pid, &wait_status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(wait_status)) result.exit_code = WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) result.signal = WTERMSIG(wait_status);
  return result;
}

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return absl::StrCat("exited with code ", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    int sig = WTERMSIG(wait_status);
    return absl::StrCat("killed by signal ", sig, " (", strsignal(sig), ")");
  }
  return "stopped";
}

}  // namespace eofaas::common
