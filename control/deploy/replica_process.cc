#include "control/deploy/replica_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/subprocess.h"

namespace eofaas::control {
namespace {

// Parses "NAME=value\0NAME=value\0..." (the format of /proc/<pid>/environ).
std::map<std::string, std::string> ParseEnviron(const std::string& environ) {
  std::map<std::string, std::string> vars;
  for (absl::string_view entry : absl::StrSplit(environ, '\0', absl::SkipEmpty())) {
    size_t equals = entry.find('=');
    if (equals == absl::string_view::npos) continue;
    vars.emplace(entry.substr(0, equals), entry.substr(equals + 1));
  }
  return vars;
}

std::optional<ReplicaIdentity> IdentityFromEnv(const std::map<std::string, std::string>& vars) {
  auto get = [&vars](const char* name) -> const std::string* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : &it->second;
  };
  const std::string* function = get("EOFAAS_FUNCTION");
  const std::string* deployment = get("EOFAAS_DEPLOYMENT");
  const std::string* generation = get("EOFAAS_GENERATION");
  const std::string* slot = get("EOFAAS_REPLICA");
  const std::string* port = get("EOFAAS_PORT");
  const std::string* concurrency = get("EOFAAS_CONCURRENCY");
  if (!function || !deployment || !generation || !slot || !port || !concurrency) {
    return std::nullopt;
  }
  ReplicaIdentity identity;
  identity.function = *function;
  identity.deployment = *deployment;
  if (function->empty() || deployment->empty() ||
      !absl::SimpleAtoi(*generation, &identity.generation) ||
      !absl::SimpleAtoi(*slot, &identity.slot) || !absl::SimpleAtoi(*port, &identity.port) ||
      !absl::SimpleAtoi(*concurrency, &identity.concurrency) || identity.slot < 0 ||
      identity.port <= 0 || identity.port > 65535) {
    return std::nullopt;
  }
  return identity;
}

}  // namespace

std::vector<std::string> ReplicaEnvironment(const ReplicaIdentity& identity,
                                            const std::map<std::string, std::string>& user_env,
                                            absl::string_view instance_id,
                                            int64_t drain_timeout_ms) {
  std::map<std::string, std::string> vars = user_env;
  vars["EOFAAS_PORT"] = absl::StrCat(identity.port);
  vars["EOFAAS_HOST"] = "127.0.0.1";
  vars["EOFAAS_CONCURRENCY"] = absl::StrCat(identity.concurrency);
  vars["EOFAAS_DRAIN_TIMEOUT_MS"] = absl::StrCat(drain_timeout_ms);
  vars["EOFAAS_FUNCTION"] = identity.function;
  vars["EOFAAS_GENERATION"] = absl::StrCat(identity.generation);
  vars["EOFAAS_REPLICA"] = absl::StrCat(identity.slot);
  vars["EOFAAS_DEPLOYMENT"] = identity.deployment;
  vars["EOFAAS_INSTANCE"] = std::string(instance_id);
  vars["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  vars["HOME"] = "/tmp";
  vars["LANG"] = "C.UTF-8";
  vars["PYTHONDONTWRITEBYTECODE"] = "1";
  std::vector<std::string> env;
  env.reserve(vars.size());
  for (const auto& [name, value] : vars) env.push_back(absl::StrCat(name, "=", value));
  return env;
}

std::vector<FoundReplicaGroup> FindReplicaGroups(absl::string_view instance_id) {
  // Per pgid: the environment of the leader (or of the first member seen when the leader is
  // gone), and whether the leader is our child.
  struct Group {
    std::map<std::string, std::string> vars;
    bool our_child = false;
  };
  std::map<pid_t, Group> groups;
  const pid_t self = getpid();
  for (const common::FoundProcess& process :
       common::FindProcessesWithEnv(absl::StrCat("EOFAAS_INSTANCE=", instance_id))) {
    Group& group = groups[process.stat.pgrp];
    const bool leader = process.pid == process.stat.pgrp;
    if (leader) group.our_child = process.stat.ppid == self;
    if (leader || group.vars.empty()) group.vars = ParseEnviron(process.environment);
  }

  std::vector<FoundReplicaGroup> found;
  for (const auto& [pgid, group] : groups) {
    found.push_back({pgid, group.our_child, IdentityFromEnv(group.vars)});
  }
  return found;
}

ReplicaProcess::State ReplicaProcess::Poll() {
  if (own_child_ && !leader_reaped_) {
    int status = 0;
    pid_t reaped;
    do {
      reaped = waitpid(pgid_, &status, WNOHANG);
    } while (reaped < 0 && errno == EINTR);
    if (reaped == pgid_) {
      leader_reaped_ = true;
      wait_status_ = status;
    } else if (reaped < 0) {
      leader_reaped_ = true;  // ECHILD: not (or no longer) ours to reap
    }
  }
  if (!common::ProcessGroupAlive(pgid_, &live_member_)) return State::kGone;
  return own_child_ && leader_reaped_ ? State::kLeaderExited : State::kRunning;
}

std::string ReplicaProcess::DescribeExit() const {
  return wait_status_ ? common::DescribeWaitStatus(*wait_status_) : "ended";
}

void ReplicaProcess::Signal(int signal) const { kill(-pgid_, signal); }

std::vector<std::string> TailLines(const std::string& path, int max_lines,
                                   absl::string_view since_prefix) {
  constexpr off_t kTailBytes = 8192;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  const off_t size = lseek(fd, 0, SEEK_END);
  const off_t start = size > kTailBytes ? size - kTailBytes : 0;
  std::string tail(size > start ? static_cast<size_t>(size - start) : 0, '\0');
  const ssize_t n = tail.empty() ? 0 : pread(fd, tail.data(), tail.size(), start);
  close(fd);
  tail.resize(n > 0 ? static_cast<size_t>(n) : 0);
  std::vector<std::string> lines = absl::StrSplit(tail, '\n', absl::SkipWhitespace());
  // The first line may be cut when the file is longer than the window.
  if (start > 0 && !lines.empty()) lines.erase(lines.begin());
  if (!since_prefix.empty()) {
    auto marker = std::find_if(lines.rbegin(), lines.rend(), [&](const std::string& line) {
      return absl::StartsWith(line, since_prefix);
    });
    lines.erase(lines.begin(), marker.base());
  }
  if (lines.size() > static_cast<size_t>(max_lines)) {
    lines.erase(lines.begin(), lines.end() - max_lines);
  }
  for (auto& line : lines) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
  }
  return lines;
}

}  // namespace eofaas::control
