#include "control/k8s/client/informer.h"

#include <algorithm>
#include <boost/json/value.hpp>

#include "common/log.h"

namespace eofaas::control::k8s {

Informer::Informer(KubeClient& client, std::string path, Handlers handlers, InformerOptions options)
    : client_(client),
      path_(std::move(path)),
      handlers_(std::move(handlers)),
      options_(std::move(options)) {}

Informer::~Informer() { Stop(); }

void Informer::Start() {
  thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
}

void Informer::Stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  thread_.join();
}

void Informer::Backoff(std::stop_token stop, absl::Duration& backoff) {
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, stop, absl::ToChronoNanoseconds(backoff), [] { return false; });
  backoff = std::min(backoff * 2, options_.max_backoff);
}

void Informer::Run(std::stop_token stop) {
  std::string resource_version;  // empty: list first
  absl::Duration backoff = options_.initial_backoff;
  while (!stop.stop_requested()) {
    if (resource_version.empty()) {
      absl::StatusOr<ObjectList> list = client_.List(path_, options_.selector);
      if (!list.ok()) {
        common::LogWarning("listing ", path_, ": ", list.status().message());
        Backoff(stop, backoff);
        continue;
      }
      if (stop.stop_requested()) return;
      resource_version = list->resource_version;
      handlers_.on_list(*list);
      backoff = options_.initial_backoff;
    }
    const absl::Status watched = client_.Watch(
        path_, options_.selector, resource_version,
        [&](const WatchEvent& event) {
          const boost::json::value* version = nullptr;
          if (const auto* metadata = event.object.if_contains("metadata");
              metadata != nullptr && metadata->is_object()) {
            version = metadata->get_object().if_contains("resourceVersion");
          }
          if (version != nullptr && version->is_string() && !version->get_string().empty()) {
            resource_version = std::string(version->get_string());
          }
          if (event.type != WatchEventType::kBookmark) handlers_.on_event(event);
          backoff = options_.initial_backoff;
        },
        stop);
    if (watched.ok()) continue;  // the server ended it: watch on from where it got to
    if (IsExpired(watched)) {
      common::LogInfo("listing ", path_, " again: ", watched.message());
      resource_version.clear();
      continue;
    }
    common::LogWarning("watching ", path_, ": ", watched.message());
    Backoff(stop, backoff);
  }
}

}  // namespace eofaas::control::k8s
