#include "control/controller.h"

#include <algorithm>
#include <random>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/names.h"
#include "common/utf8.h"

namespace eofaas::control {

using eofaas::v1::BuildPhase;
using eofaas::v1::DeployPhase;

struct Controller::Entry {
  Entry(FunctionRecord stored, std::chrono::milliseconds progress_deadline)
      : record(std::move(stored)),
        build(record.function().status().build_phase()),
        deploy(record.function().status().deploy_phase(), progress_deadline),
        counted_phase(record.function().status().deploy_phase()),
        deleting(counted_phase == DeployPhase::DEPLOY_PHASE_DELETING) {}

  FunctionRecord record;
  BuildMachine build;
  DeployMachine deploy;
  // Set to stop the running build of this function.
  std::shared_ptr<std::atomic<bool>> build_cancel;
  // A build task waits in the queue for this function.
  bool build_queued = false;
  std::optional<DeploymentObservation> observation;
  std::string deploy_failure;
  std::vector<Endpoint> endpoints;
  // The autoscaler's latest decision, while it decides the replica count.
  std::optional<Decision> autoscaled;
  // The replica count Deploy last asked for, whether or not it could be applied (-1: none yet).
  int applied_replicas = -1;
  // The phase this entry is counted under in eofaas_functions.
  DeployPhase counted_phase = DeployPhase::DEPLOY_PHASE_UNSPECIFIED;
  bool deleting = false;
};

namespace {

Function& FunctionOf(auto& entry) { return *entry.record.mutable_function(); }

std::string NewUid() {
  std::random_device random;
  return absl::StrFormat("%08x-%04x-%04x-%04x-%04x%08x", random(), random() & 0xffff,
                         (random() & 0x0fff) | 0x4000, (random() & 0x3fff) | 0x8000,
                         random() & 0xffff, random());
}

Function WithoutFiles(const Function& function) {
  Function copy = function;
  copy.clear_files();
  return copy;
}

// "max_replicas 0" means "same as min_replicas" (and at least 1).
void NormalizeScaling(eofaas::v1::Scaling& scaling) {
  if (scaling.max_replicas() == 0) scaling.set_max_replicas(std::max(scaling.min_replicas(), 1));
}

// The replicas a function starts with, and keeps while nothing is decided: one at least, so that
// a new generation proves it runs.
int InitialReplicas(const Function& function) {
  return std::max(function.scaling().min_replicas(), 1);
}

void AddEndpoints(const std::string& function, const std::vector<Endpoint>& endpoints,
                  bool scales_to_zero, eofaas::v1::WatchEndpointsResponse& response) {
  auto* entry = response.add_functions();
  entry->set_function(function);
  entry->set_scales_to_zero(scales_to_zero);
  for (const Endpoint& endpoint : endpoints) {
    auto* replica = entry->add_replicas();
    replica->set_address(endpoint.address);
    replica->set_concurrency(endpoint.concurrency);
    replica->set_generation(endpoint.generation);
  }
}

absl::Status NotFound(const std::string& name) {
  return absl::NotFoundError(absl::StrCat("function \"", name, "\" not found"));
}

const char* BuildResult(BuildPhase phase) {
  switch (phase) {
    case BuildPhase::BUILD_PHASE_SUCCEEDED:
      return "succeeded";
    case BuildPhase::BUILD_PHASE_FAILED:
      return "failed";
    default:
      return "cancelled";
  }
}

}  // namespace

bool Controller::Autoscales(const Function& function) const {
  const auto& scaling = function.scaling();
  if (scaling.min_replicas() == 0) return true;
  return scaling.max_replicas() > scaling.min_replicas() && !options_.cluster_autoscaling;
}

int Controller::DesiredReplicas(const Entry& entry) const {
  const Function& function = entry.record.function();
  if (!Autoscales(function) || !entry.autoscaled) return InitialReplicas(function);
  int desired = std::clamp(entry.autoscaled->desired_replicas, function.scaling().min_replicas(),
                           function.scaling().max_replicas());
  // A generation being rolled out runs at least one replica, so that it proves it starts.
  if (function.status().observed_generation() != entry.record.deployed().generation()) {
    desired = std::max(desired, 1);
  }
  return desired;
}

bool Controller::ScalesToZero(const Entry& entry) {
  return entry.record.has_deployed() && !entry.deleting &&
         entry.record.function().scaling().min_replicas() == 0;
}

Controller::Controller(ControllerOptions options, Store& store, const TemplateCatalog& templates,
                       Builder& builder, Deployer& deployer, const common::Clock& clock,
                       ControlMetrics& metrics)
    : options_(std::move(options)),
      store_(store),
      templates_(templates),
      builder_(builder),
      deployer_(deployer),
      clock_(clock),
      metrics_(metrics),
      build_pool_(std::make_unique<common::WorkerPool>(
          "build", options_.build_workers, static_cast<size_t>(options_.max_functions) * 4)) {}

Controller::~Controller() { Shutdown(); }

Controller::Entry* Controller::Find(const std::string& name) {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second.get();
}

const Controller::Entry* Controller::Find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second.get();
}

absl::Status Controller::Start() {
  auto autoscaler = Autoscaler::Create(options_.autoscaler, clock_);
  if (!autoscaler.ok()) return autoscaler.status();
  autoscaler_ = *std::move(autoscaler);
  auto records = store_.LoadAll();
  if (!records.ok()) return records.status();
  {
    std::lock_guard lock(mu_);
    for (auto& record : *records) {
      auto entry = std::make_unique<Entry>(record, options_.progress_deadline);
      metrics_.FunctionPhaseChanged(DeployPhase::DEPLOY_PHASE_UNSPECIFIED, entry->counted_phase);
      entries_.emplace(record.function().name(), std::move(entry));
    }
  }
  // Replicas left by a previous process are kept when they belong to the deployment that serves
  // or to the one being rolled out; anything else (deleted or re-created functions) drains.
  auto keep = [this](const std::string& name, const std::string& deployment_name) {
    std::lock_guard lock(mu_);
    const Entry* entry = Find(name);
    if (entry == nullptr || entry->deleting) return false;
    const auto& status = entry->record.function().status();
    return deployment_name == entry->record.deployed().deployment_name() ||
           (status.observed_generation() != 0 &&
            deployment_name ==
                common::DeploymentName(name, status.uid(), status.observed_generation()));
  };
  auto started =
      deployer_.Start([this](const DeploymentObservation& o) { OnObservation(o); }, keep);
  if (!started.ok()) return started;
  std::lock_guard lock(mu_);
  for (auto& [name, entry] : entries_) {
    if (entry->deleting) {
      deployer_.Remove(name);
      continue;
    }
    if (!IsTerminal(entry->build.phase())) {
      int64_t generation = FunctionOf(*entry).status().generation();
      common::LogInfo("function ", name, ": build of generation ", generation,
                      " was interrupted; running it again");
      AppendBuildLogLocked(name, generation,
                           {"control plane restarted during this build: running it again"}, false);
      entry->build = BuildMachine();
      FunctionOf(*entry).mutable_status()->set_build_phase(entry->build.phase());
      StartBuild(*entry);
    }
    if (entry->record.has_deployed()) {
      ResumeAtZero(*entry);
      Deploy(*entry);
    }
    Refresh(*entry);
    (void)Commit(*entry);
  }
  ticker_ = std::thread([this] { TickLoop(); });
  return absl::OkStatus();
}

void Controller::ResumeAtZero(Entry& entry) {
  const Function& function = FunctionOf(entry);
  const auto& status = function.status();
  if (!Autoscales(function) || function.scaling().min_replicas() != 0 ||
      status.desired_replicas() != 0 ||
      status.observed_generation() != entry.record.deployed().generation()) {
    return;
  }
  autoscaler_->ResumeAtZero(function.name());
  entry.autoscaled = Decision{.desired_replicas = 0, .reason = "at zero before the restart"};
}

void Controller::Shutdown() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    // Interrupted builds stay in their phase in the store and run again after a restart.
    for (auto& [name, entry] : entries_) {
      if (entry->build_cancel) entry->build_cancel->store(true);
    }
  }
  tick_cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  build_pool_.reset();
  deployer_.Shutdown();
}

absl::Status Controller::Commit(Entry& entry) {
  if (auto status = store_.Update(entry.record); !status.ok()) {
    common::LogError("function ", FunctionOf(entry).name(),
                     ": cannot persist: ", status.ToString());
    return status;
  }
  DeployPhase phase = FunctionOf(entry).status().deploy_phase();
  metrics_.FunctionPhaseChanged(entry.counted_phase, phase);
  entry.counted_phase = phase;
  function_events_.Publish(FunctionEvent{WithoutFiles(View(entry)), false});
  return absl::OkStatus();
}

bool Controller::Refresh(Entry& entry) {
  Function& function = FunctionOf(entry);
  auto* status = function.mutable_status();
  const std::string before = status->SerializeAsString();
  DeployInputs inputs{
      .deleting = entry.deleting,
      .deployed = entry.record.has_deployed(),
      .generation = entry.record.deployed().generation(),
      .desired = DesiredReplicas(entry),
      .build_failure = entry.record.build_failure(),
      .deploy_failure = entry.deploy_failure,
      .observation = entry.observation ? &*entry.observation : nullptr,
  };
  entry.deploy.Observe(inputs, clock_.Now());
  status->set_deploy_phase(entry.deploy.phase());
  std::string message = entry.deploy.message();
  // A failed build of a newer generation does not stop the older one from serving: say both.
  if (inputs.deployed && !inputs.build_failure.empty() && message != inputs.build_failure) {
    message =
        message.empty() ? inputs.build_failure : absl::StrCat(message, "; ", inputs.build_failure);
  }
  status->set_message(message);
  status->set_desired_replicas(inputs.desired);
  if (entry.observation) {
    const DeploymentObservation& o = *entry.observation;
    status->set_ready_replicas(o.ready);
    status->set_replicas(o.running);
    status->set_restarts(o.restarts);
    status->set_observed_generation(o.serving_generation);
  }
  int64_t named_generation = status->observed_generation() != 0
                                 ? status->observed_generation()
                                 : entry.record.deployed().generation();
  if (named_generation != 0) {
    status->set_deployment_name(
        common::DeploymentName(function.name(), status->uid(), named_generation));
  }
  return status->SerializeAsString() != before;
}

void Controller::Settle(Entry& entry) {
  if (Refresh(entry)) (void)Commit(entry);
}

absl::StatusOr<Function> Controller::Create(Function function) {
  if (auto status = ValidateFunction(function, templates_, options_.limits); !status.ok()) {
    return status;
  }
  NormalizeScaling(*function.mutable_scaling());
  std::lock_guard lock(mu_);
  if (stopping_) return absl::UnavailableError("control plane is shutting down");
  if (Find(function.name()) != nullptr) {
    return absl::AlreadyExistsError(
        absl::StrCat("function \"", function.name(), "\" already exists"));
  }
  if (static_cast<int>(entries_.size()) >= options_.max_functions) {
    return absl::ResourceExhaustedError(
        absl::StrCat("function quota of ", options_.max_functions, " reached"));
  }
  auto* status = function.mutable_status();
  status->Clear();
  status->set_uid(NewUid());
  status->set_generation(1);
  status->set_build_phase(BuildPhase::BUILD_PHASE_PENDING);
  status->set_deploy_phase(DeployPhase::DEPLOY_PHASE_PENDING);
  status->set_message("waiting for a successful build");
  status->set_desired_replicas(InitialReplicas(function));
  FunctionRecord record;
  *record.mutable_function() = function;
  if (auto stored = store_.Insert(record); !stored.ok()) return stored;
  auto entry = std::make_unique<Entry>(std::move(record), options_.progress_deadline);
  metrics_.FunctionPhaseChanged(DeployPhase::DEPLOY_PHASE_UNSPECIFIED, entry->counted_phase);
  Entry& added = *entries_.emplace(function.name(), std::move(entry)).first->second;
  function_events_.Publish(FunctionEvent{WithoutFiles(function), false});
  PublishEndpoints(added);
  StartBuild(added);
  return FunctionOf(added);
}

absl::StatusOr<Function> Controller::Update(Function function, int64_t expected_generation) {
  if (auto status = ValidateFunction(function, templates_, options_.limits); !status.ok()) {
    return status;
  }
  if (expected_generation < 0) {
    return absl::InvalidArgumentError("expected_generation: must not be negative");
  }
  NormalizeScaling(*function.mutable_scaling());
  std::lock_guard lock(mu_);
  Entry* entry = nullptr;
  if (auto found = FindChangeable(function.name(), entry); !found.ok()) return found;
  const int64_t generation = FunctionOf(*entry).status().generation();
  if (expected_generation != 0 && expected_generation != generation) {
    return absl::AbortedError(absl::StrCat("function \"", function.name(), "\" is at generation ",
                                           generation, ", not ", expected_generation));
  }
  // The new generation is written as a copy and swapped in only once stored.
  FunctionRecord next = entry->record;
  Function& spec = *next.mutable_function();
  spec.set_template_(function.template_());
  *spec.mutable_files() = function.files();
  *spec.mutable_env() = function.env();
  *spec.mutable_scaling() = function.scaling();
  spec.mutable_status()->set_generation(generation + 1);
  spec.mutable_status()->set_build_phase(BuildPhase::BUILD_PHASE_PENDING);
  next.clear_build_failure();
  if (auto stored = store_.Update(next); !stored.ok()) return stored;
  // Only once the new generation is stored: an update that fails leaves the build running.
  if (!IsTerminal(entry->build.phase())) {
    CancelBuild(*entry, absl::StrCat("superseded by generation ", generation + 1));
  }
  entry->record = std::move(next);
  entry->build = BuildMachine();
  if (!Autoscales(FunctionOf(*entry)) && entry->autoscaled) {
    entry->autoscaled.reset();
    metrics_.AutoscalerForgot(function.name());
  }
  Refresh(*entry);
  (void)Commit(*entry);
  PublishEndpoints(*entry);  // whether it scales to zero may have changed
  StartBuild(*entry);
  return View(*entry);
}

absl::StatusOr<Function> Controller::Get(const std::string& name) const {
  std::lock_guard lock(mu_);
  const Entry* entry = Find(name);
  if (entry == nullptr) return NotFound(name);
  return View(*entry);
}

absl::StatusOr<FunctionPage> Controller::List(int32_t page_size,
                                              const std::string& page_token) const {
  if (page_size < 0) return absl::InvalidArgumentError("page_size: must not be negative");
  if (page_size == 0) page_size = 100;
  page_size = std::min(page_size, 1000);
  std::string after;
  if (!page_token.empty() && !absl::WebSafeBase64Unescape(page_token, &after)) {
    return absl::InvalidArgumentError("page_token: not a token from a previous response");
  }
  std::lock_guard lock(mu_);
  FunctionPage page;
  auto it = page_token.empty() ? entries_.begin() : entries_.upper_bound(after);
  for (; it != entries_.end() && static_cast<int32_t>(page.functions.size()) < page_size; ++it) {
    page.functions.push_back(WithoutFiles(View(*it->second)));
  }
  if (it != entries_.end()) {
    page.next_page_token = absl::WebSafeBase64Escape(page.functions.back().name());
  }
  return page;
}

absl::StatusOr<Function> Controller::Delete(const std::string& name) {
  std::lock_guard lock(mu_);
  Entry* entry = Find(name);
  if (entry == nullptr) return NotFound(name);
  if (entry->deleting) return FunctionOf(*entry);
  if (stopping_) return absl::UnavailableError("control plane is shutting down");
  entry->deleting = true;
  Refresh(*entry);
  if (auto stored = Commit(*entry); !stored.ok()) {
    entry->deleting = false;
    Refresh(*entry);
    return stored;
  }
  if (!IsTerminal(entry->build.phase())) {
    CancelBuild(*entry, "function deleted");
    Refresh(*entry);
    (void)Commit(*entry);
  }
  deployer_.Remove(name);
  return FunctionOf(*entry);
}

absl::StatusOr<Function> Controller::Scale(const std::string& name, int32_t min_replicas,
                                           int32_t max_replicas) {
  if (auto status = ValidateReplicas(min_replicas, max_replicas, options_.limits, "");
      !status.ok()) {
    return status;
  }
  std::lock_guard lock(mu_);
  Entry* entry = nullptr;
  if (auto found = FindChangeable(name, entry); !found.ok()) return found;
  eofaas::v1::Scaling scaling = FunctionOf(*entry).scaling();
  scaling.set_min_replicas(min_replicas);
  scaling.set_max_replicas(max_replicas);
  NormalizeScaling(scaling);
  FunctionRecord next = entry->record;
  *next.mutable_function()->mutable_scaling() = scaling;
  if (auto stored = store_.Update(next); !stored.ok()) return stored;
  *FunctionOf(*entry).mutable_scaling() = scaling;
  if (!Autoscales(FunctionOf(*entry)) && entry->autoscaled) {
    entry->autoscaled.reset();
    metrics_.AutoscalerForgot(name);
  }
  if (entry->record.has_deployed()) Deploy(*entry);
  Settle(*entry);
  PublishEndpoints(*entry);  // whether it scales to zero may have changed
  return View(*entry);
}

absl::Status Controller::FindChangeable(const std::string& name, Entry*& entry) {
  entry = Find(name);
  if (entry == nullptr) return NotFound(name);
  if (entry->deleting) {
    return absl::FailedPreconditionError(absl::StrCat("function \"", name, "\" is being deleted"));
  }
  if (stopping_) return absl::UnavailableError("control plane is shutting down");
  return absl::OkStatus();
}

void Controller::StartBuild(Entry& entry) {
  entry.build_cancel = std::make_shared<std::atomic<bool>>(false);
  if (entry.build_queued) return;
  const Function& function = FunctionOf(entry);
  ++builds_in_flight_;
  bool queued = build_pool_->Submit(
      [this, name = function.name(), uid = function.status().uid()] { RunBuild(name, uid); });
  if (!queued) {
    --builds_in_flight_;
    FinishBuild(entry, BuildPhase::BUILD_PHASE_FAILED, "build queue is full");
    return;
  }
  entry.build_queued = true;
}

void Controller::RunBuild(const std::string& name, const std::string& uid) {
  absl::Cleanup finished = [this] { --builds_in_flight_; };
  int64_t generation = 0;
  std::shared_ptr<std::atomic<bool>> cancel;
  // True when the build should stop: deleted, superseded, or shutting down. Caller holds mu_.
  auto abandoned = [&](Entry*& entry) {
    entry = Find(name);
    return entry == nullptr || cancel->load() ||
           FunctionOf(*entry).status().generation() != generation;
  };
  Function function;
  const Template* tmpl = nullptr;
  {
    std::lock_guard lock(mu_);
    Entry* entry = Find(name);
    // A function deleted (and perhaps created again) since the task was queued is not this one.
    if (entry == nullptr || FunctionOf(*entry).status().uid() != uid) return;
    entry->build_queued = false;
    generation = FunctionOf(*entry).status().generation();
    cancel = entry->build_cancel;
    if (abandoned(entry)) return;
    function = FunctionOf(*entry);
    tmpl = templates_.Find(function.template_());
    if (tmpl == nullptr) {
      FinishBuild(*entry, BuildPhase::BUILD_PHASE_FAILED,
                  absl::StrCat("template \"", function.template_(), "\" no longer exists"));
      return;
    }
    (void)entry->build.Transition(BuildPhase::BUILD_PHASE_RENDERING, clock_.Now());
    FunctionOf(*entry).mutable_status()->set_build_phase(entry->build.phase());
    if (!Commit(*entry).ok()) return;
  }
  BuildLogSink log = [&](std::vector<std::string> lines) {
    std::lock_guard lock(mu_);
    Entry* entry;
    if (!abandoned(entry)) AppendBuildLogLocked(name, generation, std::move(lines), false);
  };
  auto bundle = builder_.Render(function, *tmpl, log);
  {
    std::lock_guard lock(mu_);
    Entry* entry;
    if (abandoned(entry)) return;
    if (!bundle.ok()) {
      FinishBuild(*entry, BuildPhase::BUILD_PHASE_FAILED, std::string(bundle.status().message()));
      return;
    }
    (void)entry->build.Transition(BuildPhase::BUILD_PHASE_BUILDING, clock_.Now());
    FunctionOf(*entry).mutable_status()->set_build_phase(entry->build.phase());
    FunctionOf(*entry).mutable_status()->set_artifact(bundle->artifact);
    if (!Commit(*entry).ok()) return;
  }
  absl::Status built = builder_.Build(function, *bundle, *tmpl, log, *cancel);
  std::lock_guard lock(mu_);
  Entry* entry;
  if (abandoned(entry)) return;
  if (!built.ok()) {
    FinishBuild(*entry, BuildPhase::BUILD_PHASE_FAILED, std::string(built.message()));
    return;
  }
  auto* deployed = entry->record.mutable_deployed();
  deployed->set_generation(generation);
  deployed->set_artifact(bundle->artifact);
  deployed->set_template_(tmpl->name);
  *deployed->mutable_env() = function.env();
  deployed->set_deployment_name(
      common::DeploymentName(function.name(), function.status().uid(), generation));
  deployed->set_concurrency(function.scaling().target_concurrency() > 0
                                ? function.scaling().target_concurrency()
                                : tmpl->concurrency);
  FinishBuild(*entry, BuildPhase::BUILD_PHASE_SUCCEEDED, "");
}

void Controller::FinishBuild(Entry& entry, BuildPhase phase, const std::string& message) {
  EndBuild(entry, phase, message);
  if (phase == BuildPhase::BUILD_PHASE_SUCCEEDED) Deploy(entry);
  Refresh(entry);
  (void)Commit(entry);
  const Function& function = FunctionOf(entry);
  AppendBuildLogLocked(function.name(), function.status().generation(),
                       {absl::StrCat("build ", BuildResult(phase))}, true);
}

void Controller::CancelBuild(Entry& entry, const std::string& why) {
  if (entry.build_cancel) entry.build_cancel->store(true);
  const Function& function = FunctionOf(entry);
  const int64_t generation = function.status().generation();
  AppendBuildLogLocked(function.name(), generation, {absl::StrCat("cancelled: ", why)}, false);
  EndBuild(entry, BuildPhase::BUILD_PHASE_CANCELLED, "");
  AppendBuildLogLocked(function.name(), generation, {"build cancelled"}, true);
}

void Controller::EndBuild(Entry& entry, BuildPhase phase, const std::string& message) {
  Function& function = FunctionOf(entry);
  const int64_t generation = function.status().generation();
  (void)entry.build.Transition(phase, clock_.Now());
  function.mutable_status()->set_build_phase(phase);
  if (phase == BuildPhase::BUILD_PHASE_FAILED) {
    entry.record.set_build_failure(
        common::ValidUtf8(absl::StrCat("generation ", generation, ": ", message)));
  } else {
    entry.record.clear_build_failure();
  }
  metrics_.BuildFinished(function.template_(), BuildResult(phase), entry.build.DurationSeconds());
  common::LogInfo("function ", function.name(), ": build of generation ", generation, " ",
                  BuildResult(phase), message.empty() ? "" : ": ", message);
}

void Controller::AppendBuildLogLocked(const std::string& name, int64_t generation,
                                      std::vector<std::string> lines, bool done) {
  for (auto& line : lines) line = common::ValidUtf8(line);
  if (auto status = store_.AppendBuildLog(name, generation, lines); !status.ok()) {
    common::LogError("function ", name, ": cannot store build log: ", status.ToString());
  }
  build_log_events_.Publish(BuildLogEvent{name, generation, std::move(lines), done});
}

void Controller::Deploy(Entry& entry) {
  const auto& revision = entry.record.deployed();
  const Function& function = FunctionOf(entry);
  const Template* tmpl = templates_.Find(revision.template_());
  entry.deploy_failure.clear();
  // A count that cannot be applied is not asked for again at every tick: the failure is in the
  // status, and the next change of count or revision tries again.
  entry.applied_replicas = DesiredReplicas(entry);
  if (tmpl == nullptr) {
    entry.deploy_failure = absl::StrCat("template \"", revision.template_(), "\" no longer exists");
  } else {
    DeploymentSpec spec{
        .function = function.name(),
        .uid = function.status().uid(),
        .generation = revision.generation(),
        .deployment_name = revision.deployment_name(),
        .template_name = revision.template_(),
        .artifact = revision.artifact(),
        .bundle_dir = builder_.BundleDir(revision.artifact()),
        .command = tmpl->run,
        .env = {revision.env().begin(), revision.env().end()},
        .replicas = DesiredReplicas(entry),
        .concurrency = revision.concurrency(),
    };
    // Bounds the autoscaler leaves to the cluster (ControllerOptions::cluster_autoscaling).
    if (const auto& scaling = function.scaling();
        !Autoscales(function) && scaling.max_replicas() > scaling.min_replicas()) {
      spec.min_replicas = scaling.min_replicas();
      spec.max_replicas = scaling.max_replicas();
    }
    if (auto status = deployer_.Apply(spec); !status.ok()) {
      entry.deploy_failure = absl::StrCat("cannot deploy: ", status.message());
    }
  }
}

void Controller::OnObservation(const DeploymentObservation& observation) {
  std::lock_guard lock(mu_);
  Entry* entry = Find(observation.function);
  if (entry == nullptr) return;
  if (observation.removed) {
    if (entry->deleting) {
      FinishDeleteLocked(observation.function);
    }
    return;
  }
  entry->observation = observation;
  entry->observation->reason = common::ValidUtf8(observation.reason);
  Settle(*entry);
  if (entry->endpoints != observation.endpoints) {
    entry->endpoints = observation.endpoints;
    PublishEndpoints(*entry);
  }
}

void Controller::FinishDeleteLocked(const std::string& name) {
  Entry* entry = Find(name);
  if (entry == nullptr) return;
  if (auto status = store_.Delete(name); !status.ok() && !absl::IsNotFound(status)) {
    common::LogError("function ", name, ": cannot delete from the store: ", status.ToString());
    return;
  }
  metrics_.FunctionPhaseChanged(entry->counted_phase, DeployPhase::DEPLOY_PHASE_UNSPECIFIED);
  function_events_.Publish(FunctionEvent{WithoutFiles(FunctionOf(*entry)), true});
  // Whoever follows a build of the function hears that it will not finish.
  build_log_events_.Publish(
      BuildLogEvent{name, FunctionOf(*entry).status().generation(), {"function deleted"}, true});
  autoscaler_->Forget(name);
  if (entry->autoscaled) metrics_.AutoscalerForgot(name);
  eofaas::v1::WatchEndpointsResponse removed;
  removed.add_removed(name);
  endpoint_events_.Publish(removed);
  entries_.erase(name);
  common::LogInfo("function ", name, ": deleted");
  CollectGarbageLocked();
}

void Controller::PublishEndpoints(const Entry& entry) {
  eofaas::v1::WatchEndpointsResponse change;
  AddEndpoints(entry.record.function().name(), entry.endpoints, ScalesToZero(entry), change);
  endpoint_events_.Publish(change);
}

void Controller::Autoscale(Entry& entry) {
  const Function& function = FunctionOf(entry);
  if (!Autoscales(function) || !entry.record.has_deployed() || entry.deleting) return;
  const ScalingSpec spec{
      .min_replicas = function.scaling().min_replicas(),
      .max_replicas = function.scaling().max_replicas(),
      .target_concurrency = static_cast<double>(std::max(entry.record.deployed().concurrency(), 1)),
  };
  const int ready = entry.observation ? entry.observation->ready : 0;
  absl::StatusOr<Decision> decision = autoscaler_->Decide(function.name(), ready, spec);
  if (!decision.ok()) {
    common::LogError("function ", function.name(), ": autoscaler: ", decision.status().ToString());
    return;
  }
  metrics_.Autoscaled(function.name(), decision->desired_replicas, decision->stable_concurrency);
  entry.autoscaled = *std::move(decision);
  // Compared with what was applied, not with the previous decision: the count also changes
  // without one, as when a rollout ends and its new generation no longer needs a replica.
  const int desired = DesiredReplicas(entry);
  if (desired != entry.applied_replicas) {
    common::LogInfo("function ", function.name(), ": autoscaler: ", entry.applied_replicas, " -> ",
                    desired, " replicas (", entry.autoscaled->reason, ")");
    Deploy(entry);
  }
}

Function Controller::View(const Entry& entry) const {
  Function function = entry.record.function();
  if (entry.autoscaled && Autoscales(function)) {
    auto* status = function.mutable_status()->mutable_autoscaler();
    status->set_stable_concurrency(entry.autoscaled->stable_concurrency);
    status->set_panic_concurrency(entry.autoscaled->panic_concurrency);
    status->set_panicking(entry.autoscaled->panicking);
    status->set_reason(entry.autoscaled->reason);
  }
  return function;
}

void Controller::ReportLoad(const std::string& proxy,
                            const std::map<std::string, int64_t>& concurrency) {
  std::lock_guard lock(mu_);
  if (stopping_ || autoscaler_ == nullptr) return;
  for (auto& [name, entry] : entries_) {
    if (entry->deleting || !Autoscales(FunctionOf(*entry))) continue;
    auto it = concurrency.find(name);
    const int64_t load = it == concurrency.end() ? 0 : it->second;
    (void)autoscaler_->Record(name, proxy, static_cast<double>(load));
    // Calls waiting for a function at zero replicas start it now, not at the next tick.
    if (load > 0 && entry->record.has_deployed() && DesiredReplicas(*entry) == 0) {
      Autoscale(*entry);
      Settle(*entry);
    }
  }
}

void Controller::CollectGarbageLocked() {
  // Only in a quiet moment: a running build may have rendered a bundle that no record names yet,
  // and during a rollout the replicas of the generation still serving run from a bundle that the
  // record no longer names.
  if (builds_in_flight_ > 0) return;
  std::set<std::string> live;
  for (const auto& [name, entry] : entries_) {
    const auto& status = entry->record.function().status();
    if (entry->record.has_deployed() &&
        status.observed_generation() != entry->record.deployed().generation()) {
      return;
    }
    live.insert(status.artifact());
    live.insert(entry->record.deployed().artifact());
  }
  builder_.CollectGarbage(live);
}

void Controller::TickLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    tick_cv_.wait_for(lock, std::chrono::milliseconds(500));
    if (stopping_) break;
    for (auto& [name, entry] : entries_) {
      if (!entry->record.has_deployed()) continue;
      Autoscale(*entry);
      Settle(*entry);
    }
  }
}

absl::StatusOr<uint64_t> Controller::WatchFunction(const std::string& name,
                                                   Subscribers<FunctionEvent>::Sink sink) {
  std::lock_guard lock(mu_);
  const Entry* entry = Find(name);
  if (entry == nullptr) return NotFound(name);
  sink(FunctionEvent{WithoutFiles(View(*entry)), false});
  return function_events_.Add([name, sink = std::move(sink)](const FunctionEvent& event) {
    if (event.function.name() == name) sink(event);
  });
}

absl::StatusOr<uint64_t> Controller::WatchBuildLog(const std::string& name, int64_t generation,
                                                   bool follow,
                                                   Subscribers<BuildLogEvent>::Sink sink) {
  if (generation < 0) return absl::InvalidArgumentError("generation: must not be negative");
  std::lock_guard lock(mu_);
  const Entry* entry = Find(name);
  if (entry == nullptr) return NotFound(name);
  const int64_t current = entry->record.function().status().generation();
  if (generation == 0) generation = current;
  if (generation > current) {
    return absl::NotFoundError(absl::StrCat("generation: function \"", name,
                                            "\" has no generation ", generation, " (current is ",
                                            current, ")"));
  }
  auto lines = store_.ReadBuildLog(name, generation, 0);
  if (!lines.ok()) return lines.status();
  const bool running = generation == current && !IsTerminal(entry->build.phase());
  sink(BuildLogEvent{name, generation, std::move(*lines), !(follow && running)});
  if (!(follow && running)) return 0;
  return build_log_events_.Add(
      [name, generation, sink = std::move(sink)](const BuildLogEvent& event) {
        if (event.function == name && event.generation == generation) sink(event);
      });
}

uint64_t Controller::WatchEndpoints(Subscribers<eofaas::v1::WatchEndpointsResponse>::Sink sink) {
  std::lock_guard lock(mu_);
  eofaas::v1::WatchEndpointsResponse snapshot;
  snapshot.set_snapshot(true);
  for (const auto& [name, entry] : entries_) {
    AddEndpoints(name, entry->endpoints, ScalesToZero(*entry), snapshot);
  }
  sink(snapshot);
  return endpoint_events_.Add(std::move(sink));
}

}  // namespace eofaas::control
