// The autoscaler's decision: how many replicas a function wants, from the concurrency the proxies
// observe. Knative's KPA algorithm (stable and panic windows, rate limits, scale to zero after a
// grace period), with no I/O: the caller feeds samples and applies the decisions.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"

namespace eofaas::control {

struct AutoscalerOptions {
  /// Concurrency is averaged over this window for the steady-state decision; also how long the
  /// panic window must stay calm before panic mode ends. Whole seconds, at most an hour (one
  /// bucket per second is kept for it).
  std::chrono::seconds stable_window{60};
  /// The short window that detects bursts. At most `stable_window`.
  std::chrono::seconds panic_window{6};
  /// Panic starts when the panic window wants at least this many times the ready replicas.
  double panic_threshold = 2.0;
  /// Fraction of a replica's target concurrency to aim for, leaving headroom for bursts.
  double target_utilisation = 0.7;
  /// One decision may raise the count to at most ceil(rate × ready) (ready counted as at least 1).
  double max_scale_up_rate = 1000.0;
  /// One decision may lower the count to no less than ceil(ready / rate).
  double max_scale_down_rate = 2.0;
  /// A function with min_replicas 0 goes to zero replicas once no concurrency has been observed
  /// for this long.
  std::chrono::seconds scale_to_zero_grace{60};
  /// A source's last sample counts until it is older than this; then the source is dropped.
  std::chrono::seconds source_ttl{5};

  /// InvalidArgument naming the first field out of range.
  absl::Status Validate() const;
};

/// A function's scaling settings with the API's defaults already resolved (max_replicas 0 means
/// min_replicas, target_concurrency 0 the template's default).
struct ScalingSpec {
  int32_t min_replicas = 0;
  /// At least max(min_replicas, 1).
  int32_t max_replicas = 1;
  /// Concurrent invocations one replica is meant to carry; positive.
  double target_concurrency = 1.0;
};

/// One scaling decision, for the deployer, the metrics and GetFunction.
struct Decision {
  int32_t desired_replicas = 0;
  /// Observed concurrency (summed over sources) averaged over the stable and the panic window.
  double stable_concurrency = 0;
  double panic_concurrency = 0;
  bool panicking = false;
  /// Why the count is what it is, for status and logs, e.g. "stable: 11.10 concurrent over 60s /
  /// 2.10 per replica; scale-down limited to 8".
  std::string reason;
};

/// Per-function concurrency history and scaling state. Thread-safe; `clock` must outlive it.
///
/// Samples are kept per source (each proxy reports its own in-flight + queued count for a function
/// at least once a second); the function's concurrency in a second is the sum of every live
/// source's latest value. A source that misses a second keeps counting with its last value until
/// its sample is older than `source_ttl`. History is one bucket per second over `stable_window`,
/// so memory per function is bounded; `Forget` drops a deleted function.
///
/// Decide follows Knative's KPA:
/// - desired = ceil(concurrency / (target_concurrency × target_utilisation)), from the stable
///   window average, clamped to [min_replicas, max_replicas];
/// - when the panic window average wants ≥ panic_threshold × ready replicas, panic mode starts:
///   the larger of the two windows' figures is used and the count never goes down, until the
///   panic window has stayed under the threshold for a whole stable window;
/// - one step lowers the count to no less than ceil(ready / max_scale_down_rate) and raises it to
///   no more than ceil(max_scale_up_rate × max(ready, 1));
/// - zero replicas only with min_replicas 0, outside panic mode, once nothing has been observed
///   for `scale_to_zero_grace` (counted from the first sample or decision after start-up or
///   Forget); until then at least one replica is kept, ready or not;
/// - from zero, any concurrency in the windows wants at least one replica at once, since the
///   windows average over the seconds they have seen and round up.
class Autoscaler {
 public:
  /// InvalidArgument when `options` do not validate.
  static absl::StatusOr<std::unique_ptr<Autoscaler>> Create(const AutoscalerOptions& options,
                                                            const common::Clock& clock);

  /// `source` (e.g. a proxy's id) observes `concurrency` (in flight + queued) for `function` now.
  /// Within one second the latest sample of a source wins. InvalidArgument when `concurrency` is
  /// negative or not finite.
  absl::Status Record(absl::string_view function, absl::string_view source, double concurrency);

  /// Decides the replica count for `function` now, given `ready_replicas` serving it. Starts
  /// tracking a function it has not seen. InvalidArgument naming the field when `ready_replicas`
  /// is negative or `scaling` breaks its contract.
  absl::StatusOr<Decision> Decide(absl::string_view function, int32_t ready_replicas,
                                  const ScalingSpec& scaling);

  /// Drops everything known about `function` (call when it is deleted); a later Record or Decide
  /// starts it afresh.
  void Forget(absl::string_view function);

  /// Starts tracking `function` as idle for the whole scale-to-zero grace already: a restarted
  /// control plane's function that was at zero replicas stays there until it has load.
  void ResumeAtZero(absl::string_view function);

 private:
  struct Source {
    double concurrency = 0;
    /// Second (clock seconds) of the latest sample.
    int64_t second = 0;
  };
  struct FunctionState {
    /// buckets[s % size] holds the concurrency of second s, for s in (head - size, head].
    std::vector<double> buckets;
    int64_t first_second = 0;
    int64_t head_second = 0;
    common::Clock::TimePoint tracked_since;
    /// The last second in which any concurrency was observed.
    std::optional<int64_t> last_active_second;
    std::map<std::string, Source, std::less<>> sources;
    bool panicking = false;
    common::Clock::TimePoint last_over_threshold;
    /// The highest count wanted in the current panic episode.
    int64_t panic_high_water = 0;
  };

  Autoscaler(const AutoscalerOptions& options, const common::Clock& clock);

  FunctionState& StateFor(absl::string_view function, common::Clock::TimePoint now);
  /// Closes the seconds up to `second` with the live sources' values; drops expired sources.
  void Advance(FunctionState& state, int64_t second) const;
  double LiveSum(const FunctionState& state, int64_t second) const;
  void WriteBucket(FunctionState& state, int64_t second) const;
  double WindowAverage(const FunctionState& state, std::chrono::seconds window) const;

  const AutoscalerOptions options_;
  const common::Clock& clock_;
  std::mutex mu_;
  std::map<std::string, FunctionState, std::less<>> functions_;
};

}  // namespace eofaas::control
