// Autoscaling figures with the real eofaas-control and eofaas-proxy and python3 replicas:
// the first response of a function scaled to zero (spawn, health, dispatch), repeated; then a
// load ramp of closed-loop clients, sampling the replica counts over time. Prints one line per
// figure and the ramp as a table, and writes the ramp as CSV to the path given (for a plot).
// Run it through run_autoscale_bench.sh.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/integration/proxy/ingress/proxy_process.h"
#include "tests/support/control_plane.h"
#include "tests/support/temp_dir.h"

namespace eofaas::bench {
namespace {

using namespace eofaas::v1;
using Clock = std::chrono::steady_clock;

const std::string kData = EOFAAS_SOURCE_DIR "/examples/data";

double Percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

// A python3 function that sleeps args.ms milliseconds per call, one call per replica at a time.
Function Sleeper(const std::string& name, int min_replicas, int max_replicas) {
  Function function;
  function.set_name(name);
  function.set_template_("python3");
  (*function.mutable_files())["handler.py"] =
      "import time\n\n\ndef handle(data, ctx):\n"
      "    time.sleep(ctx.args.get('ms', 0) / 1000)\n"
      "    return 'ok'\n";
  function.mutable_scaling()->set_min_replicas(min_replicas);
  function.mutable_scaling()->set_max_replicas(max_replicas);
  function.mutable_scaling()->set_target_concurrency(1);
  return function;
}

InvokeRequest Call(const std::string& function, int sleep_ms) {
  InvokeRequest request;
  request.set_function(function);
  request.mutable_cursor()->set_uri("file://" + kData + "/scenes/2024-03.txt");
  (*request.mutable_args()->mutable_fields())["ms"].set_number_value(sleep_ms);
  return request;
}

absl::Status Create(tests::ControlPlane& plane, const Function& function) {
  CreateFunctionRequest create;
  *create.mutable_function() = function;
  CreateFunctionResponse created;
  grpc::Status status = plane.provision().CreateFunction(tests::Context().get(), create, &created);
  if (!status.ok()) return absl::InternalError(status.error_message());
  return plane.WaitReady(function.name()).status();
}

FunctionStatus StatusOf(tests::ControlPlane& plane, const std::string& name) {
  GetFunctionRequest request;
  request.set_name(name);
  GetFunctionResponse response;
  (void)plane.provision().GetFunction(tests::Context().get(), request, &response);
  return response.function().status();
}

// Waits until the function has no replica, then times one call through the proxy.
absl::StatusOr<double> FirstResponseFromZero(tests::ControlPlane& plane,
                                             tests::ProxyProcess& proxy) {
  auto at_zero = plane.WaitFor(
      "cold", [](const Function& f) { return f.status().replicas() == 0; }, absl::Seconds(60));
  if (!at_zero.ok()) return at_zero.status();
  const auto start = Clock::now();
  InvokeResponse response;
  grpc::Status status =
      proxy.invoker().Invoke(tests::Context(absl::Seconds(20)).get(), Call("cold", 0), &response);
  if (!status.ok()) return absl::InternalError(status.error_message());
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

int Run(int cold_runs, const std::string& csv_path) {
  tests::TempDir dir;
  auto plane = tests::ControlPlane::Start(
      {.data_dir = dir / "control",
       .flags = {"--data_root=" + kData, "--autoscale_stable_window=6s",
                 "--autoscale_panic_window=2s", "--scale_to_zero_grace=2s"}});
  if (!plane.ok()) {
    std::cerr << plane.status() << "\n";
    return 1;
  }
  for (const Function& function : {Sleeper("cold", 0, 1), Sleeper("ramp", 1, 8)}) {
    if (auto status = Create(**plane, function); !status.ok()) {
      std::cerr << function.name() << ": " << status << "\n" << (*plane)->Log();
      return 1;
    }
  }
  auto proxy = tests::ProxyProcess::Start(
      {"--control=" + (*plane)->grpc_address(), "--data_root=" + kData}, dir / "proxy.log");
  if (!proxy.ok()) {
    std::cerr << proxy.status() << "\n";
    return 1;
  }

  // Scale from zero.
  std::vector<double> latencies;
  for (int run = 0; run < cold_runs; ++run) {
    auto latency = FirstResponseFromZero(**plane, **proxy);
    if (!latency.ok()) {
      std::cerr << "scale from zero: " << latency.status() << "\n" << (*proxy)->Log();
      return 1;
    }
    latencies.push_back(*latency);
  }
  const double p50 = Percentile(latencies, 0.5);
  std::cout << absl::StrFormat(
      "scale_from_zero_first_response  n=%d p50=%.1f ms p90=%.1f ms max=%.1f ms  target p50 <= "
      "200 ms: %s\n",
      cold_runs, p50, Percentile(latencies, 0.9),
      *std::max_element(latencies.begin(), latencies.end()), p50 <= 200 ? "met" : "missed");

  // A ramp of closed-loop clients, each calling a 100 ms handler without pause.
  const std::vector<std::pair<int, int>> steps = {{1, 6}, {2, 6}, {4, 6}, {8, 8},
                                                  {4, 6}, {2, 6}, {0, 12}};
  std::atomic<int> clients_wanted = 0;
  std::atomic<bool> stop = false;
  std::atomic<int64_t> succeeded = 0, failed = 0;
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&, i] {
      while (!stop) {
        if (i >= clients_wanted) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
          continue;
        }
        InvokeResponse response;
        grpc::Status status = (*proxy)->invoker().Invoke(tests::Context(absl::Seconds(30)).get(),
                                                         Call("ramp", 100), &response);
        (status.ok() && response.has_result() ? succeeded : failed)++;
      }
    });
  }
  std::ofstream csv(csv_path);
  csv << "seconds,clients,observed_concurrency,desired_replicas,ready_replicas\n";
  std::cout << "  time  clients  observed  desired  ready\n";
  const auto start = Clock::now();
  for (const auto& [wanted, seconds] : steps) {
    clients_wanted = wanted;
    const auto step_end = Clock::now() + std::chrono::seconds(seconds);
    while (Clock::now() < step_end) {
      const FunctionStatus status = StatusOf(**plane, "ramp");
      const double t = std::chrono::duration<double>(Clock::now() - start).count();
      std::cout << absl::StrFormat("%6.1f  %7d  %8.2f  %7d  %5d\n", t, wanted,
                                   status.autoscaler().stable_concurrency(),
                                   status.desired_replicas(), status.ready_replicas());
      csv << absl::StrFormat("%.1f,%d,%.3f,%d,%d\n", t, wanted,
                             status.autoscaler().stable_concurrency(), status.desired_replicas(),
                             status.ready_replicas());
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }
  stop = true;
  for (auto& client : clients) client.join();
  std::cout << absl::StrFormat("load_ramp  calls=%d failed=%d  target no failed call: %s\n",
                               succeeded.load() + failed.load(), failed.load(),
                               failed == 0 ? "met" : "missed");
  const std::string instance = (*plane)->instance();
  (*proxy).reset();
  (*plane)->Kill();
  tests::KillReplicaGroups(instance);
  return failed == 0 && p50 <= 200 ? 0 : 1;
}

}  // namespace
}  // namespace eofaas::bench

int main(int argc, char** argv) {
  const int cold_runs = argc > 1 ? std::atoi(argv[1]) : 10;
  const std::string csv = argc > 2 ? argv[2] : "autoscale_ramp.csv";
  return eofaas::bench::Run(cold_runs, csv);
}
