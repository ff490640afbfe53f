#include "control/k8s/runtime/kube_builder.h"

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/names.h"
#include "control/k8s/names.h"

namespace eofaas::control::k8s {
namespace {

namespace json = boost::json;
using SteadyTime = std::chrono::steady_clock::time_point;

// How often a wait looks at its build's `cancel`.
constexpr absl::Duration kCancelCheck = absl::Milliseconds(100);
// How long past its deadline a Job may take to be marked failed before the wait gives up on it.
constexpr absl::Duration kFinishSlack = absl::Minutes(1);
// The most lines of a pod's log read into the build log.
constexpr int kLogTailLines = 1000;
// Lines of the pod's log repeated in a failed build's status message.
constexpr size_t kMessageLines = 6;

// How a finished Job ended, from its conditions.
struct JobOutcome {
  bool succeeded = false;
  std::string reason;
  std::string message;
};

std::string StringAt(const json::object& object, std::string_view key) {
  const json::value* value = object.if_contains(key);
  return value != nullptr && value->is_string() ? std::string(value->get_string()) : "";
}

// Complete (or SuccessCriteriaMet) or Failed with status "True" when the Job finished; nothing
// while it runs.
std::optional<JobOutcome> Finished(const json::object& job) {
  const json::value* status = job.if_contains("status");
  if (status == nullptr || !status->is_object()) return std::nullopt;
  const json::value* conditions = status->get_object().if_contains("conditions");
  if (conditions == nullptr || !conditions->is_array()) return std::nullopt;
  for (const json::value& entry : conditions->get_array()) {
    if (!entry.is_object() || StringAt(entry.get_object(), "status") != "True") continue;
    const std::string type = StringAt(entry.get_object(), "type");
    if (type == "Complete" || type == "SuccessCriteriaMet" || type == "Failed") {
      return JobOutcome{.succeeded = type != "Failed",
                        .reason = StringAt(entry.get_object(), "reason"),
                        .message = StringAt(entry.get_object(), "message")};
    }
  }
  return std::nullopt;
}

// Waits `duration`, looking at `cancel` every kCancelCheck; false once it became true.
bool Pause(absl::Duration duration, const std::atomic<bool>& cancel) {
  const SteadyTime end = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(duration);
  while (!cancel) {
    const SteadyTime now = std::chrono::steady_clock::now();
    if (now >= end) return true;
    std::this_thread::sleep_for(
        std::min<std::chrono::nanoseconds>(end - now, absl::ToChronoNanoseconds(kCancelCheck)));
  }
  return false;
}

// Reads the Job at `path` every `interval` until it finished. CANCELLED once `cancel` became
// true; DEADLINE_EXCEEDED after `limit`. The API server being unreachable for a while is no
// reason to give up a build: such reads are logged and tried again.
absl::StatusOr<JobOutcome> FollowJob(KubeClient& client, const std::string& path,
                                     absl::string_view job_name, absl::Duration interval,
                                     absl::Duration limit, const BuildLogSink& log,
                                     const std::atomic<bool>& cancel) {
  const SteadyTime give_up = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(limit);
  for (;;) {
    if (cancel) return absl::CancelledError("build cancelled");
    absl::StatusOr<json::object> job = client.Get(path);
    if (job.ok()) {
      if (std::optional<JobOutcome> outcome = Finished(*job)) return *outcome;
    } else if (absl::IsNotFound(job.status())) {
      return absl::FailedPreconditionError(
          absl::StrCat("build failed: Job ", job_name, " was deleted before it finished"));
    } else if (absl::IsUnavailable(job.status()) || absl::IsDeadlineExceeded(job.status())) {
      log({absl::StrCat("reading Job ", job_name, ": ", job.status().message(), "; trying again")});
    } else {
      return job.status();
    }
    if (std::chrono::steady_clock::now() >= give_up) {
      return absl::DeadlineExceededError(absl::StrCat(
          "build failed: Job ", job_name, " did not finish within ", absl::FormatDuration(limit)));
    }
    if (!Pause(interval, cancel)) return absl::CancelledError("build cancelled");
  }
}

// The log of the Job's latest pod, as lines, also given to `log`. A retried Job's latest pod is
// the one whose log tells how the Job ended. Empty when the Job left no pod or its log cannot
// be read (which is logged).
std::vector<std::string> PodLogLines(KubeClient& client, absl::string_view namespace_name,
                                     absl::string_view job_name, const BuildLogSink& log) {
  absl::StatusOr<std::string> pods_path = CollectionPath("v1", "Pod", namespace_name);
  if (!pods_path.ok()) return {};
  // Kubernetes labels a Job's pods with job-name (and, since 1.27, batch.kubernetes.io/job-name).
  absl::StatusOr<ObjectList> pods =
      client.List(*pods_path, {.labels = absl::StrCat("job-name=", job_name)});
  if (!pods.ok()) {
    log({absl::StrCat("cannot list the pods of Job ", job_name, ": ", pods.status().message())});
    return {};
  }
  // (creationTimestamp, name) of the latest pod: RFC 3339 times in UTC compare as strings, and
  // the name breaks ties, so the choice is stable.
  std::pair<std::string, std::string> latest;
  for (const json::object& pod : pods->items) {
    const json::value* metadata = pod.if_contains("metadata");
    if (metadata == nullptr || !metadata->is_object()) continue;
    latest = std::max(latest, std::make_pair(StringAt(metadata->get_object(), "creationTimestamp"),
                                             StringAt(metadata->get_object(), "name")));
  }
  const std::string& pod = latest.second;
  if (pod.empty()) {
    log({absl::StrCat("Job ", job_name, " left no pod to read a log from")});
    return {};
  }
  absl::StatusOr<std::string> text = client.PodLog(namespace_name, pod, kLogTailLines);
  if (!text.ok()) {
    log({absl::StrCat("cannot read the log of pod ", pod, ": ", text.status().message())});
    return {};
  }
  std::vector<std::string> lines = absl::StrSplit(*text, '\n', absl::SkipEmpty());
  log({absl::StrCat("log of pod ", pod, ":")});
  log(lines);
  return lines;
}

}  // namespace

absl::StatusOr<std::unique_ptr<KubeBuilder>> KubeBuilder::Create(KubeClient& client,
                                                                 std::string bundles_dir,
                                                                 KubeBuilderOptions options) {
  if (absl::StatusOr<std::string> path = CollectionPath("v1", "Job", options.namespace_name);
      !path.ok()) {
    return path.status();
  }
  if (options.registry.server.empty()) {
    return absl::InvalidArgumentError("registry.server: required");
  }
  if (options.deadline <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("deadline: must be positive");
  }
  if (options.backoff_limit < 0) {
    return absl::InvalidArgumentError("backoff_limit: must not be negative");
  }
  if (options.poll_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("poll_interval: must be positive");
  }
  std::optional<YAML::Node> secret;
  if (options.credentials) {
    absl::StatusOr<YAML::Node> rendered =
        RenderRegistrySecret(options.namespace_name, options.registry, *options.credentials);
    if (!rendered.ok()) return rendered.status();
    secret = *std::move(rendered);
    // From here on the credentials live in the rendered Secret only.
    options.credentials.reset();
  }
  return std::unique_ptr<KubeBuilder>(
      new KubeBuilder(client, std::move(bundles_dir), std::move(options), std::move(secret)));
}

KubeBuilder::KubeBuilder(KubeClient& client, std::string bundles_dir, KubeBuilderOptions options,
                         std::optional<YAML::Node> registry_secret)
    // The check timeout bounds LocalBuilder's Build, which never runs here.
    : client_(client),
      local_(std::move(bundles_dir), absl::ZeroDuration()),
      options_(std::move(options)),
      registry_secret_(std::move(registry_secret)) {}

absl::StatusOr<Bundle> KubeBuilder::Render(const eofaas::v1::Function& function,
                                           const Template& tmpl, const BuildLogSink& log) {
  return local_.Render(function, tmpl, log);
}

absl::Status KubeBuilder::Build(const eofaas::v1::Function& function, const Bundle& bundle,
                                const Template& tmpl, const BuildLogSink& log,
                                const std::atomic<bool>& cancel) {
  const std::string image = ImageReference(options_.registry, function.name(), bundle.artifact);
  {
    std::lock_guard lock(mu_);
    if (built_.contains(image)) {
      log({absl::StrCat("image ", image, " was built before: nothing to build")});
      return absl::OkStatus();
    }
  }

  FunctionGeneration generation{
      .namespace_name = options_.namespace_name,
      .function = function.name(),
      .uid = function.status().uid(),
      .generation = function.status().generation(),
      .deployment_name = common::DeploymentName(function.name(), function.status().uid(),
                                                function.status().generation()),
      .template_name = tmpl.name,
  };
  BuildSpec spec{.tool = options_.tool,
                 .builder_image = options_.builder_image,
                 .image = image,
                 .deadline = options_.deadline,
                 .backoff_limit = options_.backoff_limit};
  absl::StatusOr<std::string> context = ArchiveBuildContext(bundle.dir);
  if (!context.ok()) return context.status();
  spec.context_archive = *std::move(context);
  log({absl::StrCat("build context: ", spec.context_archive.size(), " bytes compressed")});
  // Rendered before anything is applied: a context too large for a ConfigMap fails here.
  absl::StatusOr<std::vector<YAML::Node>> objects =
      RenderBuild(generation, spec, options_.registry);
  if (!objects.ok()) return objects.status();
  const std::string job_name = RoleName(generation.deployment_name, "build");
  std::vector<std::string> paths;  // of the objects, in apply order
  for (const YAML::Node& object : *objects) {
    absl::StatusOr<std::string> path =
        ObjectPath(object["apiVersion"].Scalar(), object["kind"].Scalar(), options_.namespace_name,
                   object["metadata"]["name"].Scalar());
    if (!path.ok()) return path.status();
    paths.push_back(*std::move(path));
  }
  if (absl::Status status = EnsureRegistrySecret(log); !status.ok()) return status;

  // Whatever the outcome, the Job (and with it its pods) goes first, then the ConfigMap it reads.
  absl::Cleanup remove = [&] {
    bool removed = true;
    for (auto path = paths.rbegin(); path != paths.rend(); ++path) {
      if (absl::Status status = client_.Delete(*path); !status.ok() && !absl::IsNotFound(status)) {
        log({absl::StrCat("cannot delete ", *path, ": ", status.message())});
        removed = false;
      }
    }
    if (removed) log({absl::StrCat("deleted Job ", job_name, " and its ConfigMap")});
  };
  log({absl::StrCat("building image ", image, " in Job ", job_name)});
  for (const YAML::Node& object : *objects) {
    if (cancel) return absl::CancelledError("build cancelled");
    const std::string kind = object["kind"].Scalar();
    if (absl::StatusOr<json::object> applied = client_.Apply(object); !applied.ok()) {
      return absl::Status(applied.status().code(), absl::StrCat("applying ", kind, " ", job_name,
                                                                ": ", applied.status().message()));
    }
    log({absl::StrCat("applied ", kind, " ", job_name)});
  }

  absl::StatusOr<JobOutcome> outcome =
      FollowJob(client_, paths.back(), job_name, options_.poll_interval,
                options_.deadline + kFinishSlack, log, cancel);
  if (!outcome.ok()) return outcome.status();
  std::vector<std::string> lines = PodLogLines(client_, options_.namespace_name, job_name, log);
  if (outcome->succeeded) {
    log({absl::StrCat("Job ", job_name, " complete: pushed image ", image)});
    std::lock_guard lock(mu_);
    built_.insert(image);
    return absl::OkStatus();
  }
  std::vector<std::string> why;
  if (!outcome->reason.empty()) why.push_back(outcome->reason);
  if (!outcome->message.empty()) why.push_back(outcome->message);
  const size_t first = lines.size() > kMessageLines ? lines.size() - kMessageLines : 0;
  std::vector<std::string> tail(lines.begin() + static_cast<long>(first), lines.end());
  const std::string failure =
      absl::StrCat("build failed: Job ", job_name, " failed", why.empty() ? "" : " (",
                   absl::StrJoin(why, ": "), why.empty() ? "" : ")");
  log({failure});
  return absl::FailedPreconditionError(
      absl::StrCat(failure, tail.empty() ? "" : ":\n", absl::StrJoin(tail, "\n")));
}

absl::Status KubeBuilder::EnsureRegistrySecret(const BuildLogSink& log) {
  if (!registry_secret_) return absl::OkStatus();
  // Held across the request: builds that start meanwhile wait for the one apply.
  std::lock_guard lock(mu_);
  if (secret_applied_) return absl::OkStatus();
  const std::string name =
      absl::StrCat(options_.namespace_name, "/", options_.registry.secret_name);
  if (absl::StatusOr<json::object> applied = client_.Apply(*registry_secret_); !applied.ok()) {
    // The API server's message may quote what it was sent: the code alone is passed on.
    return absl::Status(applied.status().code(),
                        absl::StrCat("applying the registry pull Secret ", name, " failed: ",
                                     absl::StatusCodeToString(applied.status().code())));
  }
  secret_applied_ = true;
  log({absl::StrCat("applied the registry pull Secret ", name)});
  return absl::OkStatus();
}

std::string KubeBuilder::BundleDir(const std::string& artifact) const {
  return local_.BundleDir(artifact);
}

void KubeBuilder::CollectGarbage(const std::set<std::string>& live) { local_.CollectGarbage(live); }

}  // namespace eofaas::control::k8s
