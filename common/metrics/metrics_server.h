// The HTTP endpoint Prometheus scrapes: GET /metrics renders one registry in the text format.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"

namespace eofaas::common {

/// Serves /metrics from its own small thread pool until destroyed. Thread-safe.
class MetricsServer {
 public:
  /// Listens on `address`, "host:port" (port 0 picks a free port, see port()). Keeps `registry`
  /// alive. Errors: UNAVAILABLE naming the address when it cannot be bound (in use, bad host).
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Create(
      std::string address, std::shared_ptr<prometheus::Registry> registry);

  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  /// The port actually bound.
  int port() const { return port_; }

 private:
  MetricsServer(std::unique_ptr<prometheus::Exposer> exposer,
                std::shared_ptr<prometheus::Registry> registry, int port);

  std::shared_ptr<prometheus::Registry> registry_;  // the exposer holds only a weak_ptr
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_;
};

}  // namespace eofaas::common
