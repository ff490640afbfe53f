#include "control/deploy/function_replicas.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "control/deploy/health_probe.h"
#include "control/deploy/local_deployer.h"
#include "prometheus/counter.h"

namespace eofaas::control {
namespace {

using common::LogError;
using common::LogInfo;
using common::LogWarning;

// A replica log larger than this is moved to <name>.log.1 when the replica (re)starts.
constexpr off_t kMaxLogBytes = 16 << 20;
// Written to the log before each start, so the output of the last run can be told apart.
constexpr char kRunMarker[] = "--- eofaas: ";
// Lines of a replica's last run quoted when it ends unexpectedly.
constexpr int kTailLines = 5;

void PrepareLog(const std::string& path, const std::string& headline) {
  struct stat info;
  if (stat(path.c_str(), &info) == 0 && info.st_size > kMaxLogBytes) {
    std::rename(path.c_str(), absl::StrCat(path, ".1").c_str());
  }
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return;  // Spawn reports the problem
  const std::string line = absl::StrCat(
      kRunMarker, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()), " ",
      headline, "\n");
  (void)!write(fd, line.data(), line.size());
  close(fd);
}

int64_t ElapsedMs(common::Clock::TimePoint since, common::Clock::TimePoint now) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(now - since).count();
}

}  // namespace

struct FunctionReplicas::Replica {
  enum class Phase { kStarting, kReady, kUnready, kDraining };

  Replica(ReplicaIdentity id, ReplicaProcess proc, common::Clock::TimePoint now)
      : identity(std::move(id)), process(proc), started_at(now), next_probe(now) {}
  std::string name() const { return absl::StrCat(identity.deployment, "-", identity.slot); }
  bool draining() const { return phase == Phase::kDraining; }
  bool ready() const { return phase == Phase::kReady; }

  ReplicaIdentity identity;
  ReplicaProcess process;
  Phase phase = Phase::kStarting;
  common::Clock::TimePoint started_at;
  common::Clock::TimePoint next_probe;
  int failed_probes = 0;
  /// Set once an observation without this (draining) replica has been returned: only then does
  /// it get SIGTERM, so proxies stop sending before it stops accepting.
  bool drain_announced = false;
  bool term_sent = false;
  bool kill_sent = false;
  common::Clock::TimePoint kill_at;
};

FunctionReplicas::FunctionReplicas(std::string name, Shared shared)
    : name_(std::move(name)), shared_(std::move(shared)) {}

FunctionReplicas::~FunctionReplicas() = default;

void FunctionReplicas::SetSpec(DeploymentSpec spec, common::SpawnOptions launch) {
  if (!spec_ || spec_->deployment_name != spec.deployment_name) {
    LogInfo("function ", name_, ": target generation ", spec.generation, " (", spec.deployment_name,
            "), ", spec.replicas, " replicas");
    backoff_.clear();
    last_crash_.clear();
    restarts_ = 0;
  } else if (spec_->replicas != spec.replicas) {
    LogInfo("function ", name_, ": scaling generation ", spec.generation, " to ", spec.replicas,
            " replicas");
  }
  spec_ = std::move(spec);
  launch_ = std::move(launch);
  removing_ = false;
}

void FunctionReplicas::Remove() {
  if (!removing_) LogInfo("function ", name_, ": removing every replica");
  removing_ = true;
}

bool FunctionReplicas::Adopt(const ReplicaIdentity& identity, ReplicaProcess process) {
  for (const auto& replica : replicas_) {
    if (replica->identity.deployment == identity.deployment &&
        replica->identity.slot == identity.slot) {
      return false;
    }
  }
  auto replica = std::make_unique<Replica>(identity, process, shared_.clock.Now());
  auto code = ProbeHealth(identity.port, shared_.options.probe_timeout);
  if (code.ok() && *code == 200) {
    replica->phase = Replica::Phase::kReady;
    replica->next_probe = shared_.clock.Now() + shared_.options.probe_interval;
  }
  LogInfo("adopted replica ", replica->name(), " pgid ", process.pgid(), " port ", identity.port,
          " generation ", identity.generation, replica->ready() ? " (ready)" : " (not ready yet)");
  replicas_.push_back(std::move(replica));
  return true;
}

void FunctionReplicas::ServeOldestReadyGeneration() {
  for (const auto& replica : replicas_) {
    if (replica->ready() &&
        (serving_deployment_.empty() || replica->identity.generation < serving_generation_)) {
      serving_deployment_ = replica->identity.deployment;
      serving_generation_ = replica->identity.generation;
    }
  }
}

std::optional<DeploymentObservation> FunctionReplicas::Supervise() {
  PollProcesses();
  ProbeReplicas();
  Reconcile();
  SignalDrains();
  DeploymentObservation observation = Observe();
  for (auto& replica : replicas_) replica->drain_announced = replica->draining();
  if ((!spec_ && !removing_) || last_reported_ == observation) return std::nullopt;
  last_reported_ = observation;
  return observation;
}

bool FunctionReplicas::Finished() const { return replicas_.empty() && (removing_ || !spec_); }

bool FunctionReplicas::Busy() const {
  if (removing_) return true;
  for (const auto& replica : replicas_) {
    if (replica->draining() || replica->phase == Replica::Phase::kStarting) return true;
  }
  return std::any_of(backoff_.begin(), backoff_.end(),
                     [](const auto& entry) { return !entry.second.MayStart(); });
}

void FunctionReplicas::Count(ReplicaCounts& counts) const {
  for (const auto& replica : replicas_) {
    switch (replica->phase) {
      case Replica::Phase::kStarting:
        ++counts.starting;
        break;
      case Replica::Phase::kReady:
        ++counts.ready;
        break;
      case Replica::Phase::kUnready:
        ++counts.unready;
        break;
      case Replica::Phase::kDraining:
        ++counts.draining;
        break;
    }
  }
  for (const auto& [slot, backoff] : backoff_) {
    if (!backoff.MayStart() && !HasTargetReplica(slot)) ++counts.backoff;
  }
}

bool FunctionReplicas::UsesPort(int port) const {
  return std::any_of(replicas_.begin(), replicas_.end(),
                     [port](const auto& replica) { return replica->identity.port == port; });
}

std::vector<std::pair<std::string, ReplicaProcess>> FunctionReplicas::TerminateAll() {
  std::vector<std::pair<std::string, ReplicaProcess>> processes;
  for (auto& replica : replicas_) {
    if (!replica->term_sent) replica->process.Signal(SIGTERM);
    processes.emplace_back(replica->name(), replica->process);
  }
  replicas_.clear();
  return processes;
}

bool FunctionReplicas::IsTarget(const Replica& replica) const {
  return spec_ && !replica.draining() && replica.identity.deployment == spec_->deployment_name;
}

bool FunctionReplicas::HasTargetReplica(int slot) const {
  return std::any_of(replicas_.begin(), replicas_.end(), [&](const auto& replica) {
    return IsTarget(*replica) && replica->identity.slot == slot;
  });
}

int FunctionReplicas::CountReady(const std::string& deployment) const {
  return std::count_if(replicas_.begin(), replicas_.end(), [&](const auto& replica) {
    return replica->ready() && replica->identity.deployment == deployment;
  });
}

void FunctionReplicas::PollProcesses() {
  std::erase_if(replicas_, [&](std::unique_ptr<Replica>& owned) {
    Replica& replica = *owned;
    const ReplicaProcess::State state = replica.process.Poll();
    if (replica.draining()) {
      if (state == ReplicaProcess::State::kGone) {
        LogInfo("replica ", replica.name(), " stopped (", replica.process.DescribeExit(), ")");
        return true;
      }
      if (replica.term_sent && !replica.kill_sent && shared_.clock.Now() >= replica.kill_at) {
        LogWarning("replica ", replica.name(), " still running ",
                   shared_.options.drain_timeout.count(), " ms after SIGTERM: killing it");
        replica.process.Signal(SIGKILL);
        replica.kill_sent = true;
      }
      return false;
    }
    if (state == ReplicaProcess::State::kRunning) return false;
    // The leader (the runtime, or the bwrap around it) has ended: what it left is garbage.
    if (state == ReplicaProcess::State::kLeaderExited) replica.process.Signal(SIGKILL);
    const std::string how = replica.process.DescribeExit();
    const std::vector<std::string> output =
        TailLines(LogPath(replica.identity), kTailLines, kRunMarker);
    LogWarning("replica ", replica.name(), " pgid ", replica.process.pgid(), " ", how, " after ",
               ElapsedMs(replica.started_at, shared_.clock.Now()),
               " ms; last output: ", output.empty() ? "(none)" : absl::StrJoin(output, " | "));
    if (IsTarget(replica) && replica.identity.slot < spec_->replicas) {
      RecordCrash(replica.identity.slot, how, output);
    }
    return true;
  });
}

void FunctionReplicas::RecordCrash(int slot, const std::string& what,
                                   const std::vector<std::string>& output) {
  RestartBackoff& backoff =
      backoff_.try_emplace(slot, shared_.options.backoff, shared_.clock).first->second;
  const auto delay = backoff.RecordCrash();
  ++restarts_;
  shared_.restarts.Increment();
  last_crash_[slot] = absl::StrCat("replica ", slot, " ", what, output.empty() ? "" : ": ",
                                   output.empty() ? "" : output.back());
  LogInfo("function ", name_, ": restarting replica ", slot, " in ", delay.count(), " ms",
          backoff.CrashLooping() ? " (crash loop)" : "");
}

void FunctionReplicas::ProbeReplicas() {
  using Phase = Replica::Phase;
  for (auto& owned : replicas_) {
    Replica& replica = *owned;
    if (replica.draining() || shared_.clock.Now() < replica.next_probe) continue;
    auto code = ProbeHealth(replica.identity.port, shared_.options.probe_timeout);
    const bool healthy = code.ok() && *code == 200;
    const auto now = shared_.clock.Now();
    replica.next_probe = now + shared_.options.probe_interval;
    switch (replica.phase) {
      case Phase::kStarting:
        if (healthy) {
          replica.phase = Phase::kReady;
          LogInfo("replica ", replica.name(), " ready ", ElapsedMs(replica.started_at, now),
                  " ms after start");
        } else {
          replica.next_probe = now;  // every pass until it answers
        }
        break;
      case Phase::kReady:
        if (healthy) {
          replica.failed_probes = 0;
        } else if (++replica.failed_probes >= shared_.options.unready_after_failures) {
          replica.phase = Phase::kUnready;
          LogWarning("replica ", replica.name(), " unready after ", replica.failed_probes,
                     " failed probes: ",
                     code.ok() ? absl::StrCat("HTTP ", *code) : code.status().ToString());
        }
        break;
      case Phase::kUnready:
        if (healthy) {
          replica.phase = Phase::kReady;
          replica.failed_probes = 0;
          LogInfo("replica ", replica.name(), " ready again");
        }
        break;
      case Phase::kDraining:
        break;
    }
  }
}

void FunctionReplicas::Reconcile() {
  if (removing_) {
    for (auto& replica : replicas_) {
      if (!replica->draining()) MarkDraining(*replica, "function removed");
    }
    return;
  }
  if (!spec_) return;  // adopted replicas wait for an Apply or a Remove
  const DeploymentSpec& spec = *spec_;

  for (auto& replica : replicas_) {
    if (IsTarget(*replica) && replica->identity.slot >= spec.replicas) {
      MarkDraining(*replica, absl::StrCat("scaled down to ", spec.replicas));
    }
  }
  std::erase_if(backoff_, [&](const auto& entry) { return entry.first >= spec.replicas; });
  std::erase_if(last_crash_, [&](const auto& entry) { return entry.first >= spec.replicas; });
  for (int slot = 0; slot < spec.replicas; ++slot) {
    if (HasTargetReplica(slot)) continue;
    auto backoff = backoff_.find(slot);
    if (backoff == backoff_.end() || backoff->second.MayStart()) Launch(slot);
  }

  if (serving_deployment_ != spec.deployment_name &&
      (CountReady(spec.deployment_name) >= spec.replicas || CountReady(serving_deployment_) == 0)) {
    if (!serving_deployment_.empty()) {
      LogInfo("function ", name_, ": serving generation ", spec.generation, " instead of ",
              serving_generation_);
    }
    serving_deployment_ = spec.deployment_name;
    serving_generation_ = spec.generation;
  }
  if (serving_deployment_ == spec.deployment_name) {
    for (auto& replica : replicas_) {
      if (!replica->draining() && replica->identity.deployment != spec.deployment_name) {
        MarkDraining(*replica, absl::StrCat("superseded by generation ", spec.generation));
      }
    }
  }
}

void FunctionReplicas::MarkDraining(Replica& replica, const std::string& why) {
  LogInfo("replica ", replica.name(), " draining: ", why);
  replica.phase = Replica::Phase::kDraining;
}

void FunctionReplicas::SignalDrains() {
  for (auto& replica : replicas_) {
    if (replica->draining() && replica->drain_announced && !replica->term_sent) {
      replica->process.Signal(SIGTERM);
      replica->term_sent = true;
      replica->kill_at = shared_.clock.Now() + shared_.options.drain_timeout;
    }
  }
}

void FunctionReplicas::Launch(int slot) {
  const DeploymentSpec& spec = *spec_;
  auto port = shared_.new_port();
  if (!port.ok()) {
    RecordCrash(slot, absl::StrCat("could not start: ", port.status().message()), {});
    return;
  }
  ReplicaIdentity id{spec.function, spec.deployment_name, spec.generation, slot,
                     *port,         spec.concurrency};
  common::SpawnOptions spawn = launch_;
  spawn.env = ReplicaEnvironment(id, spec.env, shared_.options.instance_id,
                                 shared_.options.drain_timeout.count());
  spawn.output_path = LogPath(id);
  PrepareLog(spawn.output_path, absl::StrCat("replica ", spec.deployment_name, "-", slot,
                                             " starting on port ", *port));
  auto pid = common::Spawn(spawn);
  if (!pid.ok()) {
    LogError("replica ", spec.deployment_name, "-", slot,
             " could not start: ", pid.status().ToString());
    RecordCrash(slot, absl::StrCat("could not start: ", pid.status().message()), {});
    return;
  }
  backoff_.try_emplace(slot, shared_.options.backoff, shared_.clock).first->second.RecordStart();
  auto replica =
      std::make_unique<Replica>(std::move(id), ReplicaProcess(*pid, true), shared_.clock.Now());
  LogInfo("replica ", replica->name(), " started pid ", *pid, " port ", *port, " generation ",
          spec.generation, " sandbox=", SandboxModeName(shared_.options.sandbox));
  replicas_.push_back(std::move(replica));
}

DeploymentObservation FunctionReplicas::Observe() const {
  DeploymentObservation observation;
  observation.function = name_;
  if (spec_) observation.target_generation = spec_->generation;
  observation.serving_generation = serving_generation_;
  observation.desired = spec_ && !removing_ ? spec_->replicas : 0;
  observation.restarts = restarts_;
  std::vector<std::pair<int, Endpoint>> endpoints;
  for (const auto& replica : replicas_) {
    if (IsTarget(*replica)) {
      ++observation.running;
      if (replica->ready()) ++observation.ready;
    }
    if (replica->ready() && replica->identity.deployment == serving_deployment_) {
      endpoints.push_back({replica->identity.slot,
                           {absl::StrCat("127.0.0.1:", replica->identity.port),
                            replica->identity.concurrency, replica->identity.generation}});
    }
  }
  std::sort(endpoints.begin(), endpoints.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [slot, endpoint] : endpoints) observation.endpoints.push_back(std::move(endpoint));
  if (!removing_) {
    for (const auto& [slot, backoff] : backoff_) {
      if (backoff.CrashLooping()) {
        observation.crash_looping = true;
        observation.reason = absl::StrCat("CrashLoopBackOff: ", last_crash_.at(slot));
        break;
      }
    }
  }
  observation.removed = removing_ && replicas_.empty();
  return observation;
}

std::string FunctionReplicas::LogPath(const ReplicaIdentity& identity) const {
  return absl::StrCat(shared_.options.log_dir, "/", identity.deployment, "-", identity.slot,
                      ".log");
}

}  // namespace eofaas::control
