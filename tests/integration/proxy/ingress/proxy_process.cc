#include "tests/integration/proxy/ingress/proxy_process.h"

#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <iterator>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/subprocess.h"
#include "tests/support/grpc_health.h"

extern char** environ;

namespace eofaas::tests {
namespace {

// The value after "key=" up to the next space in `line`.
std::string Field(absl::string_view line, absl::string_view key) {
  const std::string prefix = absl::StrCat(key, "=");
  size_t start = line.find(prefix);
  if (start == absl::string_view::npos) return "";
  start += prefix.size();
  return std::string(line.substr(start, line.find_first_of(" \n", start) - start));
}

}  // namespace

absl::StatusOr<std::unique_ptr<ProxyProcess>> ProxyProcess::Start(std::vector<std::string> flags,
                                                                  std::string log_path) {
  std::unique_ptr<ProxyProcess> proxy(new ProxyProcess());
  proxy->log_path_ = std::move(log_path);
  common::SpawnOptions spawn;
  spawn.argv = {EOFAAS_PROXY_BINARY, "--listen=127.0.0.1:0", "--http_listen=127.0.0.1:0",
                "--metrics_listen=127.0.0.1:0"};
  spawn.argv.insert(spawn.argv.end(), flags.begin(), flags.end());
  for (char** var = environ; *var != nullptr; ++var) spawn.env.push_back(*var);
  spawn.output_path = proxy->log_path_;
  auto pid = common::Spawn(spawn);
  if (!pid.ok()) return pid.status();
  proxy->pid_ = *pid;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (proxy->grpc_address_.empty()) {
    for (absl::string_view line : absl::StrSplit(proxy->Log(), '\n')) {
      if (!absl::StrContains(line, "eofaas-proxy serving")) continue;
      proxy->grpc_address_ = Field(line, "grpc");
      proxy->http_address_ = Field(line, "http");
      proxy->metrics_address_ = Field(line, "metrics");
    }
    int status;
    if (proxy->grpc_address_.empty() && waitpid(proxy->pid_, &status, WNOHANG) == proxy->pid_) {
      proxy->pid_ = -1;
      return absl::FailedPreconditionError(
          absl::StrCat("eofaas-proxy ", common::DescribeWaitStatus(status), ":\n", proxy->Log()));
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("eofaas-proxy did not start:\n", proxy->Log()));
    }
    if (proxy->grpc_address_.empty()) absl::SleepFor(absl::Milliseconds(10));
  }
  proxy->channel_ = grpc::CreateChannel(proxy->grpc_address_, grpc::InsecureChannelCredentials());
  proxy->invoker_ = eofaas::v1::Invoker::NewStub(proxy->channel_);
  // SERVING once the first endpoints arrived.
  for (int health = HealthCheck(proxy->channel_); health != 1;
       health = HealthCheck(proxy->channel_)) {
    if (absl::Now() > deadline) {
      return absl::UnavailableError(
          absl::StrCat("health status ", health, " instead of SERVING:\n", proxy->Log()));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return proxy;
}

ProxyProcess::~ProxyProcess() {
  invoker_.reset();
  channel_.reset();
  if (pid_ > 0) {
    Terminate();
    Wait();
  }
}

void ProxyProcess::Terminate() {
  if (pid_ > 0) kill(pid_, SIGTERM);
}

int ProxyProcess::Wait() {
  if (pid_ <= 0) return -1;
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

std::string ProxyProcess::Log() const {
  std::ifstream in(log_path_, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace eofaas::tests
