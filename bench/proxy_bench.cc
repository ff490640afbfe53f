// eofaas-proxy's gRPC figures, as a client sees them:
// - Invoke rate: a fixed number of unary Invoke calls outstanding (callback API), each completion
//   starting the next, for a fixed time; prints calls/s and p50/p99 latency;
// - Map rate: a Map over a data set, its stream read as fast as it comes; prints cursors/s, the
//   succeeded/failed counts and the `items` messages that carried them, while sampling the
//   proxy's memory (VmRSS, VmHWM) from /proc. --map_rounds runs it that many times in a row, one
//   line each: a single Map is one sample of a machine whose speed drifts.
// Both print the proxy's CPU per call (from /proc/PID/stat) when --pid is given, and the
// client's own CPU, to tell which side was the bottleneck.
//
// Each part prints one line of `key=value` fields; bench/run_proxy_bench.sh reads them.
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/options.h"
#include "eofaas/v1/invoker.grpc.pb.h"

namespace eofaas::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Flags {
  std::string target = "127.0.0.1:50052";
  std::string function = "echo";
  int64_t pid = 0;
  std::string invoke_uri;
  int64_t invoke_length = 100;
  int64_t invoke_concurrency = 64;
  absl::Duration invoke_duration = absl::Seconds(10);
  std::string map_input;
  int64_t map_chunk_bytes = 1;
  int64_t map_max_in_flight = 256;
  int64_t map_rounds = 1;
  absl::Duration map_timeout = absl::Minutes(2);
};

double Seconds(Clock::duration duration) { return std::chrono::duration<double>(duration).count(); }

// This process's CPU time (user + system), in seconds.
double ClientCpuSeconds() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// Another process's CPU time (user + system), in seconds; 0 when it cannot be read.
double ProcessCpuSeconds(int64_t pid) {
  std::ifstream file(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start after its closing parenthesis;
  // utime and stime are fields 14 and 15, the 12th and 13th after it.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  uint64_t utime = 0, stime = 0;
  for (int i = 1; i <= 13 && fields >> field; ++i) {
    if (i == 12) utime = std::stoull(field);
    if (i == 13) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
}

// A kB field of /proc/PID/status ("VmRSS", "VmHWM"); 0 when it cannot be read.
int64_t StatusKilobytes(int64_t pid, const std::string& name) {
  std::ifstream file(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(file, line)) {
    if (line.compare(0, name.size() + 1, name + ":") == 0) {
      return std::stoll(line.substr(name.size() + 1));
    }
  }
  return 0;
}

// The p-th percentile of `values` (sorts them).
double Percentile(std::vector<uint32_t>& values, double p) {
  if (values.empty()) return 0;
  const size_t rank = std::min(values.size() - 1, static_cast<size_t>(p / 100 * values.size()));
  std::nth_element(values.begin(), values.begin() + rank, values.end());
  return values[rank];
}

// Unary Invoke calls, `concurrency` outstanding at once until `duration` passes. Callbacks run on
// gRPC's threads; each slot's calls follow one another, so a slot's latencies need no lock.
class InvokeLoad {
 public:
  InvokeLoad(eofaas::v1::Invoker::Stub& stub, eofaas::v1::InvokeRequest request, int concurrency)
      : stub_(stub), request_(std::move(request)), slots_(concurrency) {}

  // Blocks until the last call returned.
  void Run(Clock::duration duration) {
    end_ = Clock::now() + duration;
    active_ = static_cast<int>(slots_.size());
    for (auto& slot : slots_) Start(slot);
    std::unique_lock lock(mu_);
    all_done_.wait(lock, [this] { return active_ == 0; });
  }

  std::vector<uint32_t> LatenciesMicros() const {
    std::vector<uint32_t> all;
    for (const auto& slot : slots_) {
      all.insert(all.end(), slot.latencies.begin(), slot.latencies.end());
    }
    return all;
  }
  int64_t errors() const {
    std::lock_guard lock(mu_);
    return errors_;
  }
  int64_t function_errors() const { return function_errors_; }
  std::string first_error() const {
    std::lock_guard lock(mu_);
    return first_error_;
  }

 private:
  struct Slot {
    std::unique_ptr<grpc::ClientContext> context;
    eofaas::v1::InvokeResponse response;
    Clock::time_point started;
    std::vector<uint32_t> latencies;  // microseconds
  };

  void Start(Slot& slot) {
    slot.context = std::make_unique<grpc::ClientContext>();
    slot.context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    slot.started = Clock::now();
    stub_.async()->Invoke(slot.context.get(), &request_, &slot.response,
                          [this, &slot](grpc::Status status) { Done(slot, status); });
  }

  void Done(Slot& slot, const grpc::Status& status) {
    const Clock::time_point now = Clock::now();
    slot.latencies.push_back(static_cast<uint32_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(now - slot.started).count()));
    if (!status.ok()) {
      std::lock_guard lock(mu_);
      if (errors_++ == 0) {
        first_error_ = absl::StrCat(status.error_code(), " ", status.error_message());
      }
    } else if (slot.response.has_error()) {
      ++function_errors_;
    }
    if (now < end_) return Start(slot);
    std::lock_guard lock(mu_);
    if (--active_ == 0) all_done_.notify_one();
  }

  eofaas::v1::Invoker::Stub& stub_;
  const eofaas::v1::InvokeRequest request_;
  std::vector<Slot> slots_;
  Clock::time_point end_;
  std::atomic<int64_t> function_errors_ = 0;
  mutable std::mutex mu_;
  std::condition_variable all_done_;
  int active_ = 0;
  int64_t errors_ = 0;
  std::string first_error_;
};

bool RunInvoke(eofaas::v1::Invoker::Stub& stub, const Flags& flags) {
  eofaas::v1::InvokeRequest request;
  request.set_function(flags.function);
  request.mutable_cursor()->set_uri(flags.invoke_uri);
  request.mutable_cursor()->set_length(flags.invoke_length);
  request.mutable_timeout()->set_seconds(10);
  InvokeLoad load(stub, request, static_cast<int>(flags.invoke_concurrency));
  const double proxy_cpu = ProcessCpuSeconds(flags.pid);
  const double client_cpu = ClientCpuSeconds();
  const Clock::time_point start = Clock::now();
  load.Run(absl::ToChronoNanoseconds(flags.invoke_duration));
  const double seconds = Seconds(Clock::now() - start);
  std::vector<uint32_t> latencies = load.LatenciesMicros();
  const auto calls = static_cast<double>(latencies.size());
  std::printf(
      "grpc_invoke concurrency=%lld seconds=%.1f calls=%zu rate=%.0f p50_ms=%.2f p99_ms=%.2f "
      "errors=%lld function_errors=%lld proxy_cpu_us=%.1f client_cpu_us=%.1f\n",
      static_cast<long long>(flags.invoke_concurrency), seconds, latencies.size(), calls / seconds,
      Percentile(latencies, 50) / 1000, Percentile(latencies, 99) / 1000,
      static_cast<long long>(load.errors()), static_cast<long long>(load.function_errors()),
      flags.pid ? (ProcessCpuSeconds(flags.pid) - proxy_cpu) * 1e6 / calls : 0.0,
      (ClientCpuSeconds() - client_cpu) * 1e6 / calls);
  if (load.errors() > 0) std::printf("grpc_invoke first error: %s\n", load.first_error().c_str());
  return load.errors() == 0 && load.function_errors() == 0;
}

// Samples the proxy's VmRSS every 10 ms on a thread of its own until stopped; keeps the peak.
class RssSampler {
 public:
  explicit RssSampler(int64_t pid) : pid_(pid) {
    if (pid_ == 0) return;
    thread_ = std::thread([this] {
      std::unique_lock lock(mu_);
      do {
        peak_kb_ = std::max(peak_kb_, StatusKilobytes(pid_, "VmRSS"));
      } while (!stop_cv_.wait_for(lock, std::chrono::milliseconds(10), [this] { return stop_; }));
    });
  }
  ~RssSampler() { Stop(); }

  /// The peak VmRSS seen, in kB.
  int64_t Stop() {
    if (thread_.joinable()) {
      {
        std::lock_guard lock(mu_);
        stop_ = true;
      }
      stop_cv_.notify_one();
      thread_.join();
    }
    return peak_kb_;
  }

 private:
  const int64_t pid_;
  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  int64_t peak_kb_ = 0;
  std::thread thread_;
};

bool RunMap(eofaas::v1::Invoker::Stub& stub, const Flags& flags, int64_t round) {
  eofaas::v1::MapRequest request;
  request.set_function(flags.function);
  request.add_inputs(flags.map_input);
  request.mutable_partitioning()->set_chunk_bytes(flags.map_chunk_bytes);
  request.mutable_partitioning()->set_framing(eofaas::v1::FRAMING_NONE);
  request.set_max_in_flight(static_cast<int>(flags.map_max_in_flight));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoNanoseconds(flags.map_timeout));

  const int64_t rss_before_kb = flags.pid ? StatusKilobytes(flags.pid, "VmRSS") : 0;
  const double proxy_cpu = ProcessCpuSeconds(flags.pid);
  const double client_cpu = ClientCpuSeconds();
  RssSampler rss(flags.pid);
  const Clock::time_point start = Clock::now();
  std::unique_ptr<grpc::ClientReader<eofaas::v1::MapResponse>> reader = stub.Map(&context, request);
  eofaas::v1::MapResponse response;
  int64_t planned = -1, items = 0, results = 0, messages = 0;
  eofaas::v1::MapDone done;
  Clock::time_point planned_at = start;
  while (reader->Read(&response)) {
    if (response.has_items()) {
      ++messages;
      for (const eofaas::v1::MapItem& item : response.items().items()) {
        ++items;
        if (item.has_result()) ++results;
      }
    } else if (response.has_planned()) {
      planned = response.planned().items();
      planned_at = Clock::now();
    } else if (response.has_done()) {
      done = response.done();
    }
  }
  const grpc::Status status = reader->Finish();
  const double seconds = Seconds(Clock::now() - start);
  const int64_t peak_rss_kb = rss.Stop();
  const std::string status_text =
      status.ok() ? "OK" : absl::StrCat(status.error_code(), ":", status.error_message());
  const double per_item = items > 0 ? 1e6 / static_cast<double>(items) : 0;
  std::printf(
      "grpc_map round=%lld planned=%lld items=%lld messages=%lld succeeded=%lld failed=%lld "
      "seconds=%.2f plan_seconds=%.2f rate=%.0f max_in_flight=%lld proxy_cpu_us=%.2f "
      "client_cpu_us=%.2f rss_before_mib=%.1f peak_rss_mib=%.1f hwm_mib=%.1f status=%s\n",
      static_cast<long long>(round), static_cast<long long>(planned), static_cast<long long>(items),
      static_cast<long long>(messages), static_cast<long long>(done.succeeded()),
      static_cast<long long>(done.failed()), seconds, Seconds(planned_at - start),
      static_cast<double>(items) / seconds, static_cast<long long>(flags.map_max_in_flight),
      flags.pid ? (ProcessCpuSeconds(flags.pid) - proxy_cpu) * per_item : 0.0,
      (ClientCpuSeconds() - client_cpu) * per_item, rss_before_kb / 1024.0, peak_rss_kb / 1024.0,
      (flags.pid ? StatusKilobytes(flags.pid, "VmHWM") : 0) / 1024.0, status_text.c_str());
  return status.ok() && items == planned && results == items && done.failed() == 0;
}

int Run(int argc, char** argv) {
  Flags flags;
  common::Options options(
      "proxy_bench: eofaas-proxy's gRPC Invoke rate and latency, then Maps' cursor rates and "
      "the proxy's memory meanwhile. A part runs when its URI flag is set.");
  options.AddString("target", "eofaas-proxy's gRPC address (host:port)", &flags.target);
  options.AddString("function", "function to invoke", &flags.function);
  options.AddInt("pid", "eofaas-proxy's process id: CPU and memory from /proc (0: not read)",
                 &flags.pid);
  options.AddString("invoke_uri", "Invoke: the cursor's URI (file:// under a data root)",
                    &flags.invoke_uri);
  options.AddInt("invoke_length", "Invoke: the cursor's length", &flags.invoke_length);
  options.AddInt("invoke_concurrency", "Invoke: calls outstanding at once",
                 &flags.invoke_concurrency);
  options.AddDuration("invoke_duration", "Invoke: how long to run", &flags.invoke_duration);
  options.AddString("map_input", "Map: the input URI", &flags.map_input);
  options.AddInt("map_chunk_bytes", "Map: partitioning chunk_bytes", &flags.map_chunk_bytes);
  options.AddInt("map_max_in_flight", "Map: max_in_flight", &flags.map_max_in_flight);
  options.AddInt("map_rounds", "Map: how many Maps to run, one after the other", &flags.map_rounds);
  options.AddDuration("map_timeout", "Map: the call's deadline", &flags.map_timeout);
  if (auto status = options.Parse(argc, argv); !status.ok()) {
    std::cerr << "proxy_bench: " << status.message() << "\n";
    return 2;
  }
  if (options.help_requested()) {
    std::cout << options.Usage();
    return 0;
  }
  if (flags.invoke_concurrency < 1) {
    std::cerr << "proxy_bench: invoke_concurrency: must be at least 1\n";
    return 2;
  }
  if (flags.map_rounds < 1) {
    std::cerr << "proxy_bench: map_rounds: must be at least 1\n";
    return 2;
  }

  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(flags.target, grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
    std::cerr << "proxy_bench: cannot connect to " << flags.target << "\n";
    return 1;
  }
  std::unique_ptr<eofaas::v1::Invoker::Stub> stub = eofaas::v1::Invoker::NewStub(channel);
  bool ok = true;
  if (!flags.invoke_uri.empty()) ok &= RunInvoke(*stub, flags);
  if (!flags.map_input.empty()) {
    for (int64_t round = 1; round <= flags.map_rounds; ++round) ok &= RunMap(*stub, flags, round);
  }
  std::fflush(stdout);
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace eofaas::bench

int main(int argc, char** argv) { return eofaas::bench::Run(argc, argv); }
