// ControlPlaneWatch: follows eofaas.v1.Endpoints/WatchEndpoints and hands every function's ready
// replicas to a sink. When the control plane is away it keeps the last endpoints and reconnects
// with backoff, so the proxy goes on serving.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "eofaas/v1/endpoints.grpc.pb.h"
#include "proxy/discovery/endpoint_sink.h"

namespace eofaas::proxy {

struct ControlPlaneWatchOptions {
  /// host:port of eofaas-control.
  std::string address;
  /// Reconnection delay: doubles from `initial_backoff` up to `max_backoff`, with jitter.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  /// Every watch call has a deadline; it is renewed when it expires.
  absl::Duration stream_deadline = absl::Minutes(10);
};

/// Owns one thread. Start once; Stop (or the destructor) ends the watch.
class ControlPlaneWatch {
 public:
  /// `on_snapshot` runs after each full snapshot was applied (the first one makes the proxy
  /// ready).
  ControlPlaneWatch(ControlPlaneWatchOptions options, EndpointSink& sink,
                    std::function<void()> on_snapshot);
  ~ControlPlaneWatch();

  void Start();
  void Stop();

  /// Snapshots received so far (reconnections included).
  int snapshots() const { return snapshots_.load(); }

 private:
  void Run();
  // Reads one stream until it ends; true when at least one message arrived.
  bool Follow(eofaas::v1::Endpoints::Stub& endpoints);
  void Apply(const eofaas::v1::WatchEndpointsResponse& response);

  const ControlPlaneWatchOptions options_;
  EndpointSink& sink_;
  const std::function<void()> on_snapshot_;
  std::atomic<int> snapshots_{0};
  // Functions handed to the sink, to remove those a new snapshot no longer lists.
  std::set<std::string> known_;

  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  grpc::ClientContext* active_ = nullptr;  // guarded by mu_: cancelled by Stop
  std::thread thread_;
};

}  // namespace eofaas::proxy
