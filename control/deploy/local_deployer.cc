#include "control/deploy/local_deployer.h"

#include <signal.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "control/deploy/function_replicas.h"
#include "control/deploy/health_probe.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace eofaas::control {
namespace {

using common::LogError;
using common::LogInfo;
using common::LogWarning;

// How long Shutdown waits for SIGKILLed replicas to vanish before giving up on them.
constexpr std::chrono::seconds kKillWait{2};

}  // namespace

absl::StatusOr<std::unique_ptr<LocalDeployer>> LocalDeployer::Create(
    LocalDeployerOptions options, const common::Clock& clock,
    std::shared_ptr<prometheus::Registry> registry) {
  if (options.instance_id.empty()) return absl::InvalidArgumentError("instance_id is required");
  if (options.log_dir.empty()) return absl::InvalidArgumentError("log_dir is required");
  if (registry == nullptr) return absl::InvalidArgumentError("a metrics registry is required");
  for (const auto& root : options.data_roots) {
    if (root.empty() || root.front() != '/') {
      return absl::InvalidArgumentError(absl::StrCat("data root must be absolute: ", root));
    }
  }
  std::error_code error;
  std::filesystem::create_directories(options.log_dir, error);
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create log directory ", options.log_dir, ": ", error.message()));
  }
  if (options.sandbox == SandboxMode::kBwrap && !BwrapAvailable()) {
    return absl::FailedPreconditionError(
        "bubblewrap (/usr/bin/bwrap) is missing or cannot create namespaces here; install it or "
        "turn the replica sandbox off");
  }
  if (options.sandbox == SandboxMode::kNone) {
    LogWarning("replica sandbox is off: replicas run unsandboxed, with resource limits only");
  }
  std::unique_ptr<LocalDeployer> deployer(
      new LocalDeployer(std::move(options), clock, std::move(registry)));
  try {
    auto& replicas = prometheus::BuildGauge()
                         .Name("eofaas_replicas")
                         .Help("Local replicas by state")
                         .Register(*deployer->registry_);
    deployer->starting_gauge_ = &replicas.Add({{"state", "starting"}});
    deployer->ready_gauge_ = &replicas.Add({{"state", "ready"}});
    deployer->unready_gauge_ = &replicas.Add({{"state", "unready"}});
    deployer->draining_gauge_ = &replicas.Add({{"state", "draining"}});
    deployer->backoff_gauge_ = &replicas.Add({{"state", "backoff"}});
    deployer->restarts_counter_ = &prometheus::BuildCounter()
                                       .Name("eofaas_replica_restarts_total")
                                       .Help("Restarts of replicas that ended unexpectedly")
                                       .Register(*deployer->registry_)
                                       .Add({});
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("registering replica metrics: ", e.what()));
  }
  return deployer;
}

LocalDeployer::LocalDeployer(LocalDeployerOptions options, const common::Clock& clock,
                             std::shared_ptr<prometheus::Registry> registry)
    : options_(std::move(options)), clock_(clock), registry_(std::move(registry)) {}

LocalDeployer::~LocalDeployer() { Shutdown(); }

absl::Status LocalDeployer::Start(Observer observer, Keep keep) {
  {
    std::lock_guard lock(mu_);
    if (started_ || stop_mode_ != StopMode::kRunning) {
      return absl::FailedPreconditionError("local deployer already started or stopped");
    }
    started_ = true;
  }
  observer_ = std::move(observer);
  Adopt(keep);
  std::lock_guard lock(mu_);
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

absl::Status LocalDeployer::Apply(const DeploymentSpec& spec) {
  if (spec.function.empty()) return absl::InvalidArgumentError("spec.function is empty");
  if (spec.deployment_name.empty()) {
    return absl::InvalidArgumentError("spec.deployment_name is empty");
  }
  if (spec.generation <= 0) return absl::InvalidArgumentError("spec.generation must be positive");
  if (spec.replicas < 0) return absl::InvalidArgumentError("spec.replicas must not be negative");
  if (spec.concurrency < 1) return absl::InvalidArgumentError("spec.concurrency must be positive");
  for (const auto& [name, value] : spec.env) {
    if (name.empty() || name.find_first_of(std::string_view("=\0", 2)) != std::string::npos ||
        value.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("spec.env: invalid variable ", name));
    }
  }
  auto launch =
      SandboxedCommand(options_.sandbox, {spec.command, spec.bundle_dir, options_.data_roots});
  if (!launch.ok()) return launch.status();
  {
    std::lock_guard lock(mu_);
    if (stop_mode_ != StopMode::kRunning) {
      return absl::FailedPreconditionError("local deployer is shut down");
    }
    pending_.push_back({spec.function, spec, *std::move(launch)});
  }
  wake_.notify_all();
  return absl::OkStatus();
}

void LocalDeployer::Remove(const std::string& function) {
  {
    std::lock_guard lock(mu_);
    if (stop_mode_ != StopMode::kRunning) return;
    pending_.push_back({function, std::nullopt, {}});
  }
  wake_.notify_all();
}

void LocalDeployer::Shutdown() {
  std::thread thread;
  {
    std::lock_guard lock(mu_);
    if (stop_mode_ == StopMode::kRunning) stop_mode_ = StopMode::kShutdown;
    thread = std::move(thread_);
  }
  wake_.notify_all();
  if (thread.joinable()) thread.join();
}

void LocalDeployer::Abandon() {
  std::thread thread;
  {
    std::lock_guard lock(mu_);
    if (stop_mode_ == StopMode::kRunning) stop_mode_ = StopMode::kAbandon;
    thread = std::move(thread_);
  }
  wake_.notify_all();
  if (thread.joinable()) thread.join();
}

void LocalDeployer::Adopt(const Keep& keep) {
  for (const FoundReplicaGroup& group : FindReplicaGroups(options_.instance_id)) {
    ReplicaProcess process(group.pgid, group.our_child);
    if (!group.identity) {
      LogWarning("stopping process group ", group.pgid, " of instance ", options_.instance_id,
                 ": its EOFAAS_* environment is incomplete");
      DrainLeftover(process);
      continue;
    }
    const ReplicaIdentity& id = *group.identity;
    const bool wanted = keep(id.function, id.deployment);
    if (!wanted || !FunctionNamed(id.function).Adopt(id, process)) {
      LogInfo("stopping leftover replica ", id.deployment, "-", id.slot, " pgid ", group.pgid,
              " generation ", id.generation,
              wanted ? " (its slot is taken)" : " (deployment not wanted)");
      DrainLeftover(process);
    }
  }
  // A rollout under way when the previous process died resumes from its old generation.
  for (auto& [name, function] : functions_) function->ServeOldestReadyGeneration();
}

void LocalDeployer::DrainLeftover(ReplicaProcess process) {
  // No observation of this deployer ever published it: there is no removal to announce first.
  process.Signal(SIGTERM);
  orphans_.push_back({process, clock_.Now() + options_.drain_timeout});
}

FunctionReplicas& LocalDeployer::FunctionNamed(const std::string& name) {
  auto& function = functions_[name];
  if (!function) {
    function = std::make_unique<FunctionReplicas>(
        name, FunctionReplicas::Shared{options_, clock_, *restarts_counter_,
                                       [this] { return NewPort(); }});
  }
  return *function;
}

void LocalDeployer::Run() {
  auto tick = options_.busy_tick;
  for (;;) {
    std::vector<Change> changes;
    StopMode mode;
    {
      std::unique_lock lock(mu_);
      wake_.wait_for(lock, tick,
                     [this] { return !pending_.empty() || stop_mode_ != StopMode::kRunning; });
      changes.swap(pending_);
      mode = stop_mode_;
    }
    if (mode == StopMode::kAbandon) return;
    if (mode == StopMode::kShutdown) {
      DrainAllAndWait();
      return;
    }
    for (Change& change : changes) {
      FunctionReplicas& function = FunctionNamed(change.function);
      if (change.spec) {
        function.SetSpec(*std::move(change.spec), std::move(change.launch));
      } else {
        function.Remove();
      }
    }
    for (const DeploymentObservation& observation : Tick()) observer_(observation);
    tick = Busy() ? options_.busy_tick : options_.idle_tick;
  }
}

std::vector<DeploymentObservation> LocalDeployer::Tick() {
  std::erase_if(orphans_, [this](Orphan& orphan) {
    if (orphan.process.Poll() == ReplicaProcess::State::kGone) return true;
    if (!orphan.kill_sent && clock_.Now() >= orphan.kill_at) {
      LogWarning("leftover process group ", orphan.process.pgid(), " still running ",
                 options_.drain_timeout.count(), " ms after SIGTERM: killing it");
      orphan.process.Signal(SIGKILL);
      orphan.kill_sent = true;
    }
    return false;
  });
  std::vector<DeploymentObservation> observations;
  for (auto it = functions_.begin(); it != functions_.end();) {
    if (auto observation = it->second->Supervise()) observations.push_back(*std::move(observation));
    it = it->second->Finished() ? functions_.erase(it) : std::next(it);
  }
  UpdateMetrics();
  return observations;
}

absl::StatusOr<int> LocalDeployer::NewPort() const {
  // The kernel may hand out a port again once it is closed: skip the ones our replicas hold.
  for (int attempt = 0; attempt < 16; ++attempt) {
    auto port = ReserveLoopbackPort();
    if (!port.ok()) return port;
    const bool taken = std::any_of(functions_.begin(), functions_.end(), [&](const auto& entry) {
      return entry.second->UsesPort(*port);
    });
    if (!taken) return port;
  }
  return absl::UnavailableError("no free loopback port");
}

bool LocalDeployer::Busy() const {
  return !orphans_.empty() || std::any_of(functions_.begin(), functions_.end(),
                                          [](const auto& entry) { return entry.second->Busy(); });
}

void LocalDeployer::UpdateMetrics() {
  ReplicaCounts counts;
  for (const auto& [name, function] : functions_) function->Count(counts);
  counts.draining += static_cast<int>(orphans_.size());
  starting_gauge_->Set(counts.starting);
  ready_gauge_->Set(counts.ready);
  unready_gauge_->Set(counts.unready);
  draining_gauge_->Set(counts.draining);
  backoff_gauge_->Set(counts.backoff);
}

void LocalDeployer::DrainAllAndWait() {
  std::vector<std::pair<std::string, ReplicaProcess>> left;
  for (auto& [name, function] : functions_) {
    for (auto& entry : function->TerminateAll()) left.push_back(std::move(entry));
  }
  for (const Orphan& orphan : orphans_) left.emplace_back("(leftover)", orphan.process);
  functions_.clear();
  orphans_.clear();
  UpdateMetrics();
  if (!left.empty()) LogInfo("shutting down: draining ", left.size(), " replicas");
  const auto drain_deadline = clock_.Now() + options_.drain_timeout;
  std::optional<common::Clock::TimePoint> give_up_at;
  for (;;) {
    std::erase_if(left,
                  [](auto& entry) { return entry.second.Poll() == ReplicaProcess::State::kGone; });
    if (left.empty()) break;
    const auto now = clock_.Now();
    if (!give_up_at && now >= drain_deadline) {
      LogWarning("shutting down: killing ", left.size(), " replicas still running after ",
                 options_.drain_timeout.count(), " ms");
      for (const auto& [name, process] : left) process.Signal(SIGKILL);
      give_up_at = now + kKillWait;
    } else if (give_up_at && now >= *give_up_at) {
      LogError("shutting down: ", left.size(), " replica process groups did not die");
      break;
    }
    std::this_thread::sleep_for(options_.busy_tick);
  }
}

}  // namespace eofaas::control
