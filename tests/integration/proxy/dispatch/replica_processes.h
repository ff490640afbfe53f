// Real replica processes for dispatch tests: the python3 template's runtime with a test handler,
// and the fault-injecting fixture (tests/fixtures/fault_replica.py).
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/subprocess.h"
#include "tests/support/eventually.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"

namespace eofaas::tests {

/// One process serving HTTP on a loopback port it chose itself; killed with its group on
/// destruction.
class ReplicaProcess {
 public:
  /// Starts `argv` with `env` and waits until its log says where it listens, then until
  /// GET `ready_path` answers 200 (when not empty).
  static absl::StatusOr<std::unique_ptr<ReplicaProcess>> Start(std::vector<std::string> argv,
                                                               std::vector<std::string> env,
                                                               const std::string& log_path,
                                                               const std::string& ready_path) {
    auto process = std::unique_ptr<ReplicaProcess>(new ReplicaProcess());
    process->log_path_ = log_path;
    common::SpawnOptions options{
        .argv = std::move(argv), .env = std::move(env), .output_path = log_path};
    auto pid = common::Spawn(options);
    if (!pid.ok()) return pid.status();
    process->pid_ = *pid;
    const std::regex listening(R"(listening on 127\.0\.0\.1:(\d+))");
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < give_up) {
      std::smatch match;
      const std::string log = process->Log();
      if (process->address_.empty() && std::regex_search(log, match, listening)) {
        process->address_ = absl::StrCat("127.0.0.1:", match[1].str());
      }
      if (!process->address_.empty()) {
        if (ready_path.empty()) return process;
        auto health = HttpRequest(process->address_, "GET", ready_path, "", 1000);
        if (health.ok() && health->status == 200) return process;
      }
      if (waitpid(process->pid_, nullptr, WNOHANG) == process->pid_) {
        process->pid_ = -1;
        return absl::InternalError(absl::StrCat("replica exited:\n", log));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return absl::DeadlineExceededError(absl::StrCat("replica did not start:\n", process->Log()));
  }

  ~ReplicaProcess() { Kill(); }

  /// SIGKILL to the whole group: the replica dies at once, whatever it was doing.
  void Kill() {
    if (pid_ <= 0) return;
    kill(-pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  const std::string& address() const { return address_; }
  std::string Log() const {
    std::ifstream in(log_path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  ReplicaProcess() = default;
  pid_t pid_ = -1;
  std::string log_path_;
  std::string address_;
};

/// A handler for the python3 runtime, steered by the invocation's args: `sleep_ms` (first
/// attempt only), `fail` (raise ValueError), `fail_handled` (raise eofaas.FunctionError),
/// `bytes` (return these exact bytes, latin-1 encoded); otherwise a JSON description.
inline constexpr char kTestHandler[] = R"PY(
import os
import time

import eofaas


def handle(data, ctx):
    args = ctx.args
    if args.get("sleep_ms") and ctx.attempt <= 1:
        time.sleep(args["sleep_ms"] / 1000.0)
    if "fail" in args:
        raise ValueError(args["fail"])
    if "fail_handled" in args:
        raise eofaas.FunctionError(args["fail_handled"])
    if "bytes" in args:
        return args["bytes"].encode("latin-1")
    return {"pid": os.getpid(), "id": ctx.id, "uri": data.cursor.uri, "attempt": ctx.attempt,
            "deadline_ms": ctx.deadline_ms}
)PY";

/// Starts the python3 template runtime serving kTestHandler.
inline absl::StatusOr<std::unique_ptr<ReplicaProcess>> StartPythonReplica(const TempDir& dir,
                                                                          const std::string& name,
                                                                          int concurrency) {
  dir.Write(name + "/function/handler.py", kTestHandler);
  return ReplicaProcess::Start(
      {"/usr/bin/python3", "-B", EOFAAS_SOURCE_DIR "/templates/python3/runtime/server.py"},
      {"PATH=/usr/bin:/bin", "EOFAAS_PORT=0", "EOFAAS_FUNCTION=f",
       absl::StrCat("EOFAAS_CONCURRENCY=", concurrency),
       absl::StrCat("EOFAAS_FUNCTION_DIR=", dir / (name + "/function"))},
      dir / (name + ".log"), "/healthz");
}

/// Starts tests/fixtures/fault_replica.py with `env` (FAULT_STATUS=..., FAULT_DELAY_MS=...).
inline absl::StatusOr<std::unique_ptr<ReplicaProcess>> StartFaultReplica(
    const TempDir& dir, const std::string& name, std::vector<std::string> env) {
  env.push_back("PATH=/usr/bin:/bin");
  return ReplicaProcess::Start(
      {"/usr/bin/python3", "-B", EOFAAS_SOURCE_DIR "/tests/fixtures/fault_replica.py"},
      std::move(env), dir / (name + ".log"), "/stats");
}

/// Waits until the fault replica at `address` has received `requests` POSTs (its GET /stats).
/// False when it does not come to that.
inline bool AwaitFaultRequests(const std::string& address, int requests) {
  const std::string counted = absl::StrCat("\"requests\": ", requests, ",");
  return Eventually([&] {
    auto stats = HttpRequest(address, "GET", "/stats", "", 1000);
    return stats.ok() && stats->body.find(counted) != std::string::npos;
  });
}

}  // namespace eofaas::tests
