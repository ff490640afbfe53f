// Control-plane benchmark: CreateFunction → READY latency for the python3 example, and 100
// functions created at once. Prints one line per figure; run it through run_control_bench.sh.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/support/control_plane.h"
#include "tests/support/temp_dir.h"

namespace eofaas::bench {
namespace {

using namespace eofaas::v1;
using Clock = std::chrono::steady_clock;

double Millis(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

// VmRSS or VmHWM of a process, in MiB.
double MemoryMiB(pid_t pid, const std::string& field) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) / 1024.0;
  }
  return 0;
}

// The example function; `salt` changes its source so that every build is a cold one.
Function Example(const std::string& name, const std::string& salt) {
  Function function = tests::ExampleFunction(name);
  if (!salt.empty()) (*function.mutable_files())["handler.py"] += absl::StrCat("\n# ", salt, "\n");
  return function;
}

// Creates `function` and returns the time until WatchFunction reports READY.
absl::StatusOr<double> CreateToReady(tests::ControlPlane& plane, const Function& function) {
  const auto start = Clock::now();
  CreateFunctionRequest create;
  *create.mutable_function() = function;
  CreateFunctionResponse created;
  grpc::Status status = plane.provision().CreateFunction(tests::Context().get(), create, &created);
  if (!status.ok()) return absl::InternalError(status.error_message());
  WatchFunctionRequest watch;
  watch.set_name(function.name());
  auto context = tests::Context(absl::Seconds(60));
  auto reader = plane.provision().WatchFunction(context.get(), watch);
  WatchFunctionResponse change;
  while (reader->Read(&change)) {
    if (change.function().status().deploy_phase() == DEPLOY_PHASE_READY) {
      double ms = Millis(Clock::now() - start);
      context->TryCancel();
      reader->Finish();
      return ms;
    }
  }
  return absl::InternalError(absl::StrCat(function.name(), " never became READY"));
}

absl::Status Delete(tests::ControlPlane& plane, const std::string& name) {
  DeleteFunctionRequest request;
  request.set_name(name);
  DeleteFunctionResponse response;
  grpc::Status status =
      plane.provision().DeleteFunction(tests::Context().get(), request, &response);
  if (!status.ok()) return absl::InternalError(status.error_message());
  return plane.WaitGone(name);
}

absl::Status Sequential(tests::ControlPlane& plane, int runs, bool cold, const std::string& label) {
  std::vector<double> latencies;
  for (int i = 0; i < runs; ++i) {
    std::string name = absl::StrCat(cold ? "cold-" : "warm-", i);
    auto ms = CreateToReady(plane, Example(name, cold ? name : ""));
    if (!ms.ok()) return ms.status();
    latencies.push_back(*ms);
    if (auto status = Delete(plane, name); !status.ok()) return status;
  }
  std::cout << absl::StrFormat("%-34s n=%d p50=%.1f ms p99=%.1f ms max=%.1f ms\n", label, runs,
                               Percentile(latencies, 0.5), Percentile(latencies, 0.99),
                               Percentile(latencies, 1.0));
  return absl::OkStatus();
}

absl::Status Concurrent(tests::ControlPlane& plane, int functions) {
  const auto start = Clock::now();
  std::vector<std::thread> clients;
  std::atomic<int> failures{0};
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      for (int i = c; i < functions; i += 8) {
        std::string name = absl::StrCat("burst-", i);
        CreateFunctionRequest request;
        *request.mutable_function() = Example(name, name);
        CreateFunctionResponse response;
        if (!plane.provision().CreateFunction(tests::Context().get(), request, &response).ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& client : clients) client.join();
  const double created_ms = Millis(Clock::now() - start);
  if (failures > 0) return absl::InternalError(absl::StrCat(failures.load(), " creates failed"));
  double peak_rss = 0;
  for (;;) {
    peak_rss = std::max(peak_rss, MemoryMiB(plane.pid(), "VmRSS"));
    ListFunctionsRequest request;
    request.set_page_size(1000);
    ListFunctionsResponse response;
    if (!plane.provision().ListFunctions(tests::Context().get(), request, &response).ok()) {
      return absl::InternalError("ListFunctions failed");
    }
    int ready = 0;
    for (const auto& f : response.functions()) {
      ready += f.status().deploy_phase() == DEPLOY_PHASE_READY ? 1 : 0;
    }
    if (ready == functions) break;
    if (Clock::now() - start > std::chrono::minutes(5)) {
      return absl::DeadlineExceededError(absl::StrCat(ready, "/", functions, " READY after 5 min"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double all_ready_s = Millis(Clock::now() - start) / 1000.0;
  std::cout << absl::StrFormat(
      "%-34s functions=%d all_created=%.2f s all_ready=%.2f s control_rss=%.1f MiB "
      "control_peak_rss=%.1f MiB replicas=%zu\n",
      "concurrent_create_all_ready", functions, created_ms / 1000.0, all_ready_s, peak_rss,
      MemoryMiB(plane.pid(), "VmHWM"), tests::ReplicaGroups(plane.instance()).size());
  return absl::OkStatus();
}

absl::Status Run(int runs, int functions) {
  tests::TempDir dir;
  auto plane =
      tests::ControlPlane::Start({.data_dir = dir / "data", .flags = {"--max_functions=2000"}});
  if (!plane.ok()) return plane.status();
  std::cout << "eofaas-control " << (*plane)->grpc_address() << ", python3 example, "
            << std::thread::hardware_concurrency() << " cores\n";
  // One unmeasured round so that the interpreter's files are in the page cache.
  if (auto warmup = CreateToReady(**plane, Example("warmup", "warmup")); !warmup.ok()) {
    return warmup.status();
  }
  if (auto status = Delete(**plane, "warmup"); !status.ok()) return status;
  if (auto s = Sequential(**plane, runs, true, "create_to_ready_cold_build"); !s.ok()) return s;
  if (auto s = Sequential(**plane, runs, false, "create_to_ready_cached_artifact"); !s.ok())
    return s;
  return Concurrent(**plane, functions);
}

}  // namespace
}  // namespace eofaas::bench

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 30;
  int functions = argc > 2 ? std::atoi(argv[2]) : 100;
  absl::Status status = eofaas::bench::Run(runs, functions);
  if (!status.ok()) {
    std::cerr << "benchmark failed: " << status << "\n";
    return 1;
  }
  return 0;
}
