#include "common/subprocess.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace eofaas::common {
namespace {

// How long Run keeps reading output once the command has ended.
constexpr absl::Duration kOutputGrace = absl::Milliseconds(200);

// Everything the child needs is prepared before fork: after fork only async-signal-safe calls.
struct PreparedChild {
  std::vector<char*> argv;
  std::vector<char*> env;
  /// Descriptors below this are closed one by one when close_range is missing (Linux < 5.9).
  int open_max = 0;
};

PreparedChild Prepare(const SpawnOptions& options) {
  PreparedChild prepared;
  for (const auto& arg : options.argv) prepared.argv.push_back(const_cast<char*>(arg.c_str()));
  prepared.argv.push_back(nullptr);
  for (const auto& var : options.env) prepared.env.push_back(const_cast<char*>(var.c_str()));
  prepared.env.push_back(nullptr);
  const long open_max = sysconf(_SC_OPEN_MAX);
  prepared.open_max = open_max > 0 && open_max < (1 << 16) ? static_cast<int>(open_max) : 1 << 16;
  return prepared;
}

// In the child: reports errno through `error_fd` and ends.
[[noreturn]] void FailChild(int error_fd) {
  int err = errno;
  (void)!write(error_fd, &err, sizeof(err));
  _exit(127);
}

// In the child: moves `fd` to a close-on-exec descriptor >= 3, so that the dup2s onto 0-2 cannot
// overwrite it (the parent may run with a standard descriptor closed).
int AboveStdio(int fd, int error_fd) {
  if (fd < 0 || fd > STDERR_FILENO) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  if (moved < 0) FailChild(error_fd);
  return moved;
}

// In the child: closes every descriptor above 2 but `keep` (which is above 2).
void CloseOtherDescriptors(int keep, int open_max) {
  if ((keep == STDERR_FILENO + 1 || close_range(STDERR_FILENO + 1, keep - 1, 0) == 0) &&
      close_range(keep + 1, ~0U, 0) == 0) {
    return;
  }
  for (int fd = STDERR_FILENO + 1; fd < open_max; ++fd) {
    if (fd != keep) close(fd);
  }
}

// Runs in the child, with every signal blocked: set up and exec, or report errno through
// `error_fd` and _exit. Nothing of the parent leaks into the command: only descriptors 0-2 stay
// open, and every signal has its default action (the parent may ignore SIGPIPE, say) and is
// unblocked.
[[noreturn]] void ExecChild(const SpawnOptions& options, const PreparedChild& prepared,
                            int output_fd, int error_fd) {
  setsid();
  error_fd = AboveStdio(error_fd, error_fd);
  output_fd = AboveStdio(output_fd, error_fd);
  int null_fd = AboveStdio(open("/dev/null", O_RDWR | O_CLOEXEC), error_fd);
  if (null_fd < 0) FailChild(error_fd);
  const int out = output_fd >= 0 ? output_fd : null_fd;
  if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
      dup2(out, STDERR_FILENO) < 0) {
    FailChild(error_fd);
  }
  CloseOtherDescriptors(error_fd, prepared.open_max);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    sigaction(sig, &action, nullptr);  // fails harmlessly for the signals libc reserves
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (const auto& [resource, value] : options.rlimits) {
    rlimit limit{value, value};
    setrlimit(resource, &limit);
  }
  if (!options.cwd.empty() && chdir(options.cwd.c_str()) != 0) FailChild(error_fd);
  execve(prepared.argv[0], prepared.argv.data(), prepared.env.data());
  FailChild(error_fd);
}

absl::StatusOr<pid_t> SpawnWithOutputFd(const SpawnOptions& options, int output_fd) {
  if (options.argv.empty()) return absl::InvalidArgumentError("spawn: empty argv");
  PreparedChild prepared = Prepare(options);
  int error_pipe[2];
  if (pipe2(error_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  // Signals stay blocked across fork until the child has reset their dispositions: a handler of
  // the parent must never run in the child.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  pid_t pid = fork();
  if (pid == 0) {
    close(error_pipe[0]);
    ExecChild(options, prepared, output_fd, error_pipe[1]);
  }
  const int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (pid < 0) {
    close(error_pipe[0]);
    close(error_pipe[1]);
    return absl::InternalError(absl::StrCat("fork: ", strerror(fork_errno)));
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

// The whole file, or empty when it cannot be read. /proc files report size 0: read until EOF.
std::string ReadWholeFile(const std::string& path) {
  std::string content;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return content;
  char buffer[8192];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n > 0) {
      content.append(buffer, n);
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(fd);
  return content;
}

// True once `pid`, our child, has ended; it is left a zombie (not reaped), so its pid, and with
// it the id of its process group, cannot be reused yet.
bool ChildEnded(pid_t pid) {
  siginfo_t info{};
  int rc;
  do {
    rc = waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT);
  } while (rc < 0 && errno == EINTR);
  return rc < 0 || info.si_pid == pid;
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

std::vector<FoundProcess> FindProcessesWithEnv(absl::string_view entry) {
  // Whole-entry match: preceded by NUL or the start, followed by NUL.
  const std::string needle = absl::StrCat(entry, absl::string_view("\0", 1));
  std::vector<FoundProcess> found;
  const pid_t self = getpid();
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return found;
  while (dirent* process = readdir(proc)) {
    const pid_t pid = static_cast<pid_t>(atoi(process->d_name));
    if (pid <= 0 || pid == self) continue;
    std::string environment = ReadWholeFile(absl::StrCat("/proc/", pid, "/environ"));
    size_t at = environment.find(needle);
    while (at != std::string::npos && at != 0 && environment[at - 1] != '\0') {
      at = environment.find(needle, at + 1);
    }
    if (at == std::string::npos) continue;
    auto stat = ReadProcStat(pid);
    if (!stat || stat->zombie()) continue;
    found.push_back({pid, *stat, std::move(environment)});
  }
  closedir(proc);
  return found;
}

bool ProcessGroupAlive(pid_t pgid, pid_t* live_member) {
  if (pgid <= 0) return false;
  if (kill(-pgid, 0) != 0 && errno != EPERM) return false;
  // kill() also succeeds for a group of zombies, which pile up when the members' parent (an init
  // that does not reap, or a process that has not reaped yet) leaves them: look for a live member,
  // the one found last time first (the leader to begin with, since it usually runs longest).
  auto is_live_member = [pgid](pid_t pid) {
    auto stat = ReadProcStat(pid);
    return stat && stat->pgrp == pgid && !stat->zombie();
  };
  if (is_live_member(live_member != nullptr && *live_member > 0 ? *live_member : pgid)) {
    return true;
  }
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return true;  // cannot tell: trust kill()
  bool alive = false;
  while (dirent* entry = readdir(proc)) {
    pid_t pid = static_cast<pid_t>(atoi(entry->d_name));
    if (pid > 0 && is_live_member(pid)) {
      alive = true;
      if (live_member != nullptr) *live_member = pid;
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
  bool reading = true;
  std::optional<absl::Time> ended_at;
  char buffer[16384];
  for (;;) {
    if (!ended_at && ChildEnded(*pid)) ended_at = absl::Now();
    // A descendant that left the process group may hold the pipe open for ever: once the command
    // has ended, its output gets a short grace, no more.
    if (ended_at && (!reading || absl::Now() - *ended_at >= kOutputGrace)) break;
    if (!ended_at && !killed && cancel != nullptr && cancel->load()) {
      result.cancelled = killed = true;
      kill(-*pid, SIGKILL);
    } else if (!ended_at && !killed && absl::Now() >= deadline) {
      result.timed_out = killed = true;
      kill(-*pid, SIGKILL);
    }
    if (!reading) {  // the command closed its output but runs on
      poll(nullptr, 0, 20);
      continue;
    }
    pollfd pfd{out_pipe[0], POLLIN, 0};
    if (poll(&pfd, 1, 20) <= 0) continue;
    ssize_t n = read(out_pipe[0], buffer, sizeof(buffer));
    if (n > 0) {
      result.output.append(buffer, n);
      if (result.output.size() > max_output_bytes) {
        result.output.erase(0, result.output.size() - max_output_bytes);
      }
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      reading = false;  // every writer closed: the command and its children are done
    }
  }
  close(out_pipe[0]);
  // What the command left running in its group goes with it. The unreaped leader keeps the group
  // id from being reused until the waitpid below.
  kill(-*pid, SIGKILL);
  int wait_status = 0;
  pid_t reaped;
  do {
    reaped = waitpid(*pid, &wait_status, 0);
  } while (reaped < 0 && errno == EINTR);
  if (reaped == *pid && WIFEXITED(wait_status)) result.exit_code = WEXITSTATUS(wait_status);
  if (reaped == *pid && WIFSIGNALED(wait_status)) result.signal = WTERMSIG(wait_status);
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
