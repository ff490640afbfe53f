#include "tests/support/control_plane.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/subprocess.h"
#include "tests/support/grpc_health.h"

extern char** environ;

namespace eofaas::tests {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The value after "key=" up to the next space in `line`.
std::string Field(const std::string& line, const std::string& key) {
  size_t start = line.find(key + "=");
  if (start == std::string::npos) return "";
  start += key.size() + 1;
  size_t end = line.find_first_of(" \n", start);
  return line.substr(start, end - start);
}

}  // namespace

std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return context;
}

absl::StatusOr<std::unique_ptr<ControlPlane>> ControlPlane::Start(ControlPlaneOptions options) {
  std::unique_ptr<ControlPlane> plane(new ControlPlane());
  fs::create_directories(options.data_dir);
  // One log per start: a restarted control plane must not be mistaken for its predecessor.
  for (int run = 1; plane->log_path_.empty() || fs::exists(plane->log_path_); ++run) {
    plane->log_path_ =
        (fs::path(options.data_dir) / absl::StrCat("control-", run, ".log")).string();
  }
  common::SpawnOptions spawn;
  spawn.argv = {EOFAAS_CONTROL_BINARY, "--listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0",
                absl::StrCat("--data_dir=", options.data_dir),
                absl::StrCat("--templates_dir=", options.templates_dir)};
  spawn.argv.insert(spawn.argv.end(), options.flags.begin(), options.flags.end());
  for (char** var = environ; *var != nullptr; ++var) spawn.env.push_back(*var);
  spawn.output_path = plane->log_path_;
  auto pid = common::Spawn(spawn);
  if (!pid.ok()) return pid.status();
  plane->pid_ = *pid;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (plane->grpc_address_.empty()) {
    for (const auto& line : absl::StrSplit(ReadAll(plane->log_path_), '\n')) {
      if (!absl::StrContains(line, "eofaas-control serving")) continue;
      plane->grpc_address_ = Field(std::string(line), "grpc");
      plane->metrics_address_ = Field(std::string(line), "metrics");
      plane->instance_ = Field(std::string(line), "instance");
    }
    int status;
    if (plane->grpc_address_.empty() && waitpid(plane->pid_, &status, WNOHANG) == plane->pid_) {
      plane->pid_ = -1;
      return absl::FailedPreconditionError(
          absl::StrCat("eofaas-control ", common::DescribeWaitStatus(status), ":\n", plane->Log()));
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("eofaas-control did not start:\n", plane->Log()));
    }
    if (plane->grpc_address_.empty()) absl::SleepFor(absl::Milliseconds(10));
  }
  plane->channel_ = grpc::CreateChannel(plane->grpc_address_, grpc::InsecureChannelCredentials());
  plane->provision_ = eofaas::v1::Provision::NewStub(plane->channel_);
  plane->endpoints_ = eofaas::v1::Endpoints::NewStub(plane->channel_);
  if (int health = HealthCheck(plane->channel_); health != 1) {
    return absl::UnavailableError(absl::StrCat("health status ", health, " instead of SERVING"));
  }
  return plane;
}

ControlPlane::~ControlPlane() {
  provision_.reset();
  endpoints_.reset();
  channel_.reset();
  if (pid_ > 0) Stop();
}

int ControlPlane::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

void ControlPlane::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string ControlPlane::Log() const { return ReadAll(log_path_); }

absl::StatusOr<eofaas::v1::Function> ControlPlane::WaitFor(
    const std::string& name, const std::function<bool(const eofaas::v1::Function&)>& done,
    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  eofaas::v1::GetFunctionResponse response;
  for (;;) {
    eofaas::v1::GetFunctionRequest request;
    request.set_name(name);
    auto context = Context();
    grpc::Status status = provision_->GetFunction(context.get(), request, &response);
    if (status.ok() && done(response.function())) return response.function();
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "function ", name, " still ",
          status.ok() ? response.function().status().ShortDebugString() : status.error_message()));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

std::vector<std::string> ControlPlane::BuildLog(const std::string& name, int64_t generation,
                                                bool follow) {
  eofaas::v1::GetBuildLogRequest request;
  request.set_name(name);
  request.set_generation(generation);
  request.set_follow(follow);
  auto context = Context(absl::Seconds(30));
  auto reader = provision_->GetBuildLog(context.get(), request);
  std::vector<std::string> lines;
  eofaas::v1::GetBuildLogResponse line;
  while (reader->Read(&line)) lines.push_back(line.line());
  grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  return lines;
}

absl::Status ControlPlane::WaitGone(const std::string& name, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    eofaas::v1::GetFunctionRequest request;
    request.set_name(name);
    eofaas::v1::GetFunctionResponse response;
    grpc::Status status = provision_->GetFunction(Context().get(), request, &response);
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) return absl::OkStatus();
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("function ", name, " still there"));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

absl::StatusOr<eofaas::v1::Function> ControlPlane::WaitReady(const std::string& name, int replicas,
                                                             int64_t generation) {
  return WaitFor(name, [&](const eofaas::v1::Function& f) {
    return f.status().deploy_phase() == eofaas::v1::DEPLOY_PHASE_READY &&
           f.status().ready_replicas() >= replicas &&
           (generation == 0 || f.status().observed_generation() == generation);
  });
}

std::string SlowBuildTemplates(const std::string& dir, const std::string& before_check) {
  fs::path slow = fs::path(dir) / "python3";
  fs::create_directories(slow);
  fs::copy(fs::path(EOFAAS_SOURCE_DIR) / "templates/python3/runtime", slow / "runtime",
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  std::string yaml = ReadAll(EOFAAS_SOURCE_DIR "/templates/python3/template.yaml");
  const std::string check = R"(command: ["/usr/bin/python3", "-m", "py_compile"])";
  const std::string slow_check =
      absl::StrCat(R"(command: ["/bin/sh", "-c", ")", before_check,
                   R"(; exec /usr/bin/python3 -m py_compile \"$@\"", "check"])");
  if (size_t at = yaml.find(check); at != std::string::npos)
    yaml.replace(at, check.size(), slow_check);
  std::ofstream(slow / "template.yaml") << yaml;
  return dir;
}

eofaas::v1::Function ExampleFunction(const std::string& name, const std::string& example,
                                     const std::string& template_name) {
  eofaas::v1::Function function;
  function.set_name(name);
  function.set_template_(template_name);
  fs::path dir = fs::path(EOFAAS_SOURCE_DIR) / "examples" / example;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file() || entry.path().filename() == "README.md") continue;
    (*function.mutable_files())[fs::relative(entry.path(), dir).string()] = ReadAll(entry.path());
  }
  return function;
}

namespace {

// Process groups of `instance`'s replicas (only the one on `port`, when given), each with its
// "<function>/<generation>".
std::map<pid_t, std::string> FindGroups(const std::string& instance, const std::string& port = "") {
  std::map<pid_t, std::string> groups;
  if (instance.empty()) return groups;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid)) continue;
    std::string environ_text = ReadAll((entry.path() / "environ").string());
    std::map<std::string, std::string> vars;
    for (absl::string_view var : absl::StrSplit(environ_text, '\0')) {
      std::pair<std::string, std::string> kv = absl::StrSplit(var, absl::MaxSplits('=', 1));
      vars[kv.first] = kv.second;
    }
    if (vars["EOFAAS_INSTANCE"] != instance) continue;
    if (!port.empty() && vars["EOFAAS_PORT"] != port) continue;
    pid_t pgid = getpgid(pid);
    if (pgid > 0) {
      groups[pgid] = absl::StrCat(vars["EOFAAS_FUNCTION"], "/", vars["EOFAAS_GENERATION"]);
    }
  }
  return groups;
}

}  // namespace

std::vector<std::string> ReplicaGroups(const std::string& instance) {
  std::vector<std::string> result;
  for (const auto& [pgid, label] : FindGroups(instance)) result.push_back(label);
  std::sort(result.begin(), result.end());
  return result;
}

void KillReplicaGroups(const std::string& instance) {
  for (const auto& [pgid, label] : FindGroups(instance)) kill(-pgid, SIGKILL);
}

bool KillReplicaGroup(const std::string& instance, const std::string& address) {
  const auto groups = FindGroups(instance, address.substr(address.rfind(':') + 1));
  for (const auto& [pgid, label] : groups) kill(-pgid, SIGKILL);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  for (const auto& [pgid, label] : groups) {
    pid_t live_member = 0;
    while (common::ProcessGroupAlive(pgid, &live_member) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  return !groups.empty();
}

}  // namespace eofaas::tests
