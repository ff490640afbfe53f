// LoadReporter: streams the dispatcher's load per function to eofaas.v1.Endpoints/ReportLoad,
// the autoscaler's signal. It reports every interval, and at once when a call waits for a
// function scaled to zero, which is how a proxy asks for that function's first replica.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "eofaas/v1/endpoints.grpc.pb.h"
#include "proxy/dispatch/dispatcher.h"

namespace eofaas::proxy {

struct LoadReporterOptions {
  /// host:port of eofaas-control.
  std::string address;
  /// Names this proxy in its reports.
  std::string proxy;
  absl::Duration interval = absl::Seconds(1);
  /// Reconnection delay: doubles from `initial_backoff` up to `max_backoff`, with jitter.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
};

/// Owns one thread. Start once; Stop (or the destructor) ends the stream. Thread-safe.
class LoadReporter {
 public:
  /// `dispatcher` must outlive the reporter.
  LoadReporter(LoadReporterOptions options, const Dispatcher& dispatcher);
  ~LoadReporter();

  void Start();
  void Stop();

  /// Sends a report now rather than at the next interval.
  void ReportNow();

  /// Reports written so far.
  int reports() const;

 private:
  void Run();
  // Writes reports on one stream until it breaks or the reporter stops; true when one was
  // written.
  bool Stream(eofaas::v1::Endpoints::Stub& endpoints);

  const LoadReporterOptions options_;
  const Dispatcher& dispatcher_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool report_now_ = false;
  int reports_ = 0;
  grpc::ClientContext* active_ = nullptr;  // cancelled by Stop
  std::thread thread_;
};

}  // namespace eofaas::proxy
