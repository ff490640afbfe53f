#include "proxy/discovery/control_plane_watch.h"

#include <random>

#include "common/log.h"
#include "proxy/discovery/control_channel.h"

namespace eofaas::proxy {

ControlPlaneWatch::ControlPlaneWatch(ControlPlaneWatchOptions options, EndpointSink& sink,
                                     std::function<void()> on_snapshot)
    : options_(std::move(options)), sink_(sink), on_snapshot_(std::move(on_snapshot)) {}

ControlPlaneWatch::~ControlPlaneWatch() { Stop(); }

void ControlPlaneWatch::Start() {
  thread_ = std::thread([this] { Run(); });
}

void ControlPlaneWatch::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (active_ != nullptr) active_->TryCancel();
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ControlPlaneWatch::Run() {
  std::mt19937_64 random(std::random_device{}());
  absl::Duration backoff = options_.initial_backoff;
  for (;;) {
    // A new channel for each attempt: it connects at once (see ControlPlaneChannel).
    auto endpoints = eofaas::v1::Endpoints::NewStub(ControlPlaneChannel(options_.address));
    if (Follow(*endpoints)) backoff = options_.initial_backoff;
    // Jittered between half and the whole delay, so that many proxies do not reconnect at once.
    const absl::Duration delay = backoff * std::uniform_real_distribution<double>(0.5, 1.0)(random);
    backoff = std::min(backoff * 2, options_.max_backoff);
    std::unique_lock lock(mu_);
    if (stop_cv_.wait_for(lock, absl::ToChronoNanoseconds(delay), [this] { return stopping_; })) {
      return;
    }
  }
}

bool ControlPlaneWatch::Follow(eofaas::v1::Endpoints::Stub& endpoints) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.stream_deadline));
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    active_ = &context;
  }
  auto reader = endpoints.WatchEndpoints(&context, eofaas::v1::WatchEndpointsRequest());
  eofaas::v1::WatchEndpointsResponse response;
  bool received = false;
  while (reader->Read(&response)) {
    received = true;
    Apply(response);
  }
  grpc::Status status = reader->Finish();
  {
    std::lock_guard lock(mu_);
    active_ = nullptr;
    if (stopping_) return received;
  }
  if (status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
    common::LogWarning("endpoint watch of ", options_.address, " ended (", status.error_message(),
                       "); serving the last known endpoints");
  }
  return received;
}

void ControlPlaneWatch::Apply(const eofaas::v1::WatchEndpointsResponse& response) {
  std::set<std::string> listed;
  for (const auto& function : response.functions()) {
    std::vector<ReplicaInfo> replicas;
    for (const auto& replica : function.replicas()) {
      replicas.push_back({replica.address(), replica.concurrency(), replica.generation()});
    }
    sink_.Update(function.function(), std::move(replicas));
    sink_.SetScalesToZero(function.function(), function.scales_to_zero());
    listed.insert(function.function());
    known_.insert(function.function());
  }
  for (const auto& name : response.removed()) {
    sink_.Remove(name);
    known_.erase(name);
  }
  if (response.snapshot()) {
    // A snapshot is complete: whatever it does not list is gone.
    for (auto it = known_.begin(); it != known_.end();) {
      if (listed.count(*it)) {
        ++it;
      } else {
        sink_.Remove(*it);
        it = known_.erase(it);
      }
    }
    ++snapshots_;
    if (on_snapshot_) on_snapshot_();
  }
}

}  // namespace eofaas::proxy
