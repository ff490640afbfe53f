#include "control/autoscale/autoscaler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace eofaas::control {
namespace {

using std::chrono::seconds;

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

int64_t SecondOf(common::Clock::TimePoint t) {
  return std::chrono::floor<seconds>(t.time_since_epoch()).count();
}

/// ceil(x) as a replica count. The relative slack keeps exact multiples exact despite rounding in
/// the division: 21 concurrent over a 3 × 0.7 target is 10 replicas, not 11.
int64_t CeilCount(double x) {
  const double count = std::ceil(x * (1 - 1e-12));
  return static_cast<int64_t>(std::clamp(count, 0.0, double{std::numeric_limits<int32_t>::max()}));
}

/// The ring slot of a second (steady-clock seconds are never negative).
size_t Slot(int64_t second, size_t size) { return static_cast<size_t>(second) % size; }

}  // namespace

absl::Status AutoscalerOptions::Validate() const {
  if (stable_window < seconds(1) || stable_window > std::chrono::hours(1)) {
    return Invalid("stable_window", "must be between 1s and 3600s");
  }
  if (panic_window < seconds(1) || panic_window > stable_window) {
    return Invalid("panic_window", "must be between 1s and stable_window");
  }
  if (!(panic_threshold > 1.0) || !std::isfinite(panic_threshold)) {
    return Invalid("panic_threshold", "must be a finite number greater than 1");
  }
  if (!(target_utilisation > 0.0 && target_utilisation <= 1.0)) {
    return Invalid("target_utilisation", "must be in (0, 1]");
  }
  if (!(max_scale_up_rate > 1.0) || !std::isfinite(max_scale_up_rate)) {
    return Invalid("max_scale_up_rate", "must be a finite number greater than 1");
  }
  if (!(max_scale_down_rate > 1.0) || !std::isfinite(max_scale_down_rate)) {
    return Invalid("max_scale_down_rate", "must be a finite number greater than 1");
  }
  if (scale_to_zero_grace < seconds(1) || scale_to_zero_grace > std::chrono::hours(24)) {
    return Invalid("scale_to_zero_grace", "must be between 1s and 86400s");
  }
  if (source_ttl < seconds(1) || source_ttl > std::chrono::hours(1)) {
    return Invalid("source_ttl", "must be between 1s and 3600s");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Autoscaler>> Autoscaler::Create(const AutoscalerOptions& options,
                                                               const common::Clock& clock) {
  if (auto status = options.Validate(); !status.ok()) return status;
  return std::unique_ptr<Autoscaler>(new Autoscaler(options, clock));
}

Autoscaler::Autoscaler(const AutoscalerOptions& options, const common::Clock& clock)
    : options_(options), clock_(clock) {}

absl::Status Autoscaler::Record(absl::string_view function, absl::string_view source,
                                double concurrency) {
  if (!(concurrency >= 0) || !std::isfinite(concurrency)) {
    return Invalid("concurrency", "must be a finite, non-negative number");
  }
  std::lock_guard lock(mu_);
  // Read under the lock so that samples and decisions see time move forward only.
  const auto now = clock_.Now();
  const int64_t second = SecondOf(now);
  FunctionState& state = StateFor(function, now);
  Advance(state, second);
  auto it = state.sources.find(source);
  if (it == state.sources.end()) it = state.sources.emplace(std::string(source), Source{}).first;
  it->second = Source{concurrency, second};
  WriteBucket(state, second);
  if (concurrency > 0) state.last_active_second = second;
  return absl::OkStatus();
}

absl::StatusOr<Decision> Autoscaler::Decide(absl::string_view function, int32_t ready_replicas,
                                            const ScalingSpec& scaling) {
  if (ready_replicas < 0) return Invalid("ready_replicas", "must not be negative");
  if (scaling.min_replicas < 0) return Invalid("scaling.min_replicas", "must not be negative");
  if (scaling.max_replicas < std::max(scaling.min_replicas, 1)) {
    return Invalid("scaling.max_replicas",
                   absl::StrCat(scaling.max_replicas, " is less than max(min_replicas, 1)"));
  }
  if (!(scaling.target_concurrency > 0) || !std::isfinite(scaling.target_concurrency)) {
    return Invalid("scaling.target_concurrency", "must be a finite, positive number");
  }

  std::lock_guard lock(mu_);
  const auto now = clock_.Now();
  FunctionState& state = StateFor(function, now);
  Advance(state, SecondOf(now));

  Decision decision;
  decision.stable_concurrency = WindowAverage(state, options_.stable_window);
  decision.panic_concurrency = WindowAverage(state, options_.panic_window);
  const double target = scaling.target_concurrency * options_.target_utilisation;
  const int64_t stable_want = CeilCount(decision.stable_concurrency / target);
  const int64_t panic_want = CeilCount(decision.panic_concurrency / target);

  // Rates apply to the ready count, taken as at least one so that a function at zero can start.
  const int64_t ready = ready_replicas;
  const double base = static_cast<double>(std::max<int64_t>(ready, 1));
  const int64_t max_up = CeilCount(options_.max_scale_up_rate * base);
  const int64_t min_down = CeilCount(ready / options_.max_scale_down_rate);

  if (panic_want >= options_.panic_threshold * base) {
    state.panicking = true;
    state.last_over_threshold = now;
  } else if (state.panicking && now - state.last_over_threshold >= options_.stable_window) {
    // The burst has been in the stable window's average for a whole window: trust it again.
    state.panicking = false;
    state.panic_high_water = 0;
  }
  decision.panicking = state.panicking;

  // Knative takes the larger figure while panicking: after a burst the stable window may still
  // hold more than the panic window.
  const int64_t want = state.panicking ? std::max(stable_want, panic_want) : stable_want;
  const int64_t limited = std::clamp(want, min_down, max_up);
  int64_t desired = limited;
  // The reason names the window that gave the figure.
  const bool from_panic_window = state.panicking && panic_want >= stable_want;
  decision.reason = absl::StrFormat(
      "%s: %.2f concurrent over %ds / %.2f per replica", state.panicking ? "panic" : "stable",
      from_panic_window ? decision.panic_concurrency : decision.stable_concurrency,
      (from_panic_window ? options_.panic_window : options_.stable_window).count(), target);
  if (limited < want) absl::StrAppend(&decision.reason, "; scale-up limited to ", limited);
  if (state.panicking) {
    state.panic_high_water = std::max(state.panic_high_water, limited);
    desired = std::max<int64_t>(state.panic_high_water, ready);
    if (desired > limited) {
      absl::StrAppend(&decision.reason, "; holding ", desired, " while panicking");
    }
  } else if (limited > want) {
    absl::StrAppend(&decision.reason, "; scale-down limited to ", limited);
  }

  if (desired > scaling.max_replicas) {
    desired = scaling.max_replicas;
    absl::StrAppend(&decision.reason, "; capped at max_replicas ", desired);
  } else if (desired < scaling.min_replicas) {
    desired = scaling.min_replicas;
    absl::StrAppend(&decision.reason, "; raised to min_replicas ", desired);
  }

  if (scaling.min_replicas == 0 && !state.panicking) {
    const auto quiet_since = state.last_active_second
                                 ? common::Clock::TimePoint(seconds(*state.last_active_second + 1))
                                 : state.tracked_since;
    const auto idle = std::chrono::floor<seconds>(now - quiet_since);
    if (idle >= options_.scale_to_zero_grace) {
      // Nothing to serve for the whole grace: no step limit on the way down.
      desired = 0;
      decision.reason = absl::StrFormat("idle for %ds: scale to zero", idle.count());
    } else if (want == 0) {
      // No demand, but not idle for long enough: keep one replica (also while it starts, when
      // none is ready yet).
      desired = std::max<int64_t>(desired, 1);
      absl::StrAppend(&decision.reason, "; idle ", idle.count(), "s of ",
                      options_.scale_to_zero_grace.count(), "s before scale to zero");
    }
  }
  decision.desired_replicas = static_cast<int32_t>(desired);
  return decision;
}

void Autoscaler::Forget(absl::string_view function) {
  std::lock_guard lock(mu_);
  if (auto it = functions_.find(function); it != functions_.end()) functions_.erase(it);
}

void Autoscaler::ResumeAtZero(absl::string_view function) {
  std::lock_guard lock(mu_);
  const auto now = clock_.Now();
  StateFor(function, now).tracked_since = now - options_.scale_to_zero_grace;
}

Autoscaler::FunctionState& Autoscaler::StateFor(absl::string_view function,
                                                common::Clock::TimePoint now) {
  auto it = functions_.find(function);
  if (it != functions_.end()) return it->second;
  FunctionState state;
  state.buckets.assign(options_.stable_window.count(), 0.0);
  state.first_second = state.head_second = SecondOf(now);
  state.tracked_since = now;
  return functions_.emplace(std::string(function), std::move(state)).first->second;
}

void Autoscaler::Advance(FunctionState& state, int64_t second) const {
  if (second <= state.head_second) return;
  const int64_t ttl = options_.source_ttl.count();
  // The seconds being closed carried each source's latest value until it expired.
  for (const auto& [id, source] : state.sources) {
    if (source.concurrency <= 0) continue;
    const int64_t active_until = std::min(second - 1, source.second + ttl);
    if (!state.last_active_second || active_until > *state.last_active_second) {
      state.last_active_second = active_until;
    }
  }
  const int64_t size = static_cast<int64_t>(state.buckets.size());
  for (int64_t s = std::max(state.head_second + 1, second - size + 1); s <= second; ++s) {
    WriteBucket(state, s);
  }
  state.head_second = second;
  std::erase_if(state.sources,
                [&](const auto& entry) { return second - entry.second.second > ttl; });
}

double Autoscaler::LiveSum(const FunctionState& state, int64_t second) const {
  double sum = 0;
  for (const auto& [id, source] : state.sources) {
    if (second - source.second <= options_.source_ttl.count()) sum += source.concurrency;
  }
  return sum;
}

void Autoscaler::WriteBucket(FunctionState& state, int64_t second) const {
  state.buckets[Slot(second, state.buckets.size())] = LiveSum(state, second);
}

double Autoscaler::WindowAverage(const FunctionState& state, std::chrono::seconds window) const {
  // Over the seconds seen so far when the function is younger than the window, so that a new
  // function's first samples count in full.
  const int64_t from = std::max(state.head_second - window.count() + 1, state.first_second);
  double sum = 0;
  for (int64_t s = from; s <= state.head_second; ++s) {
    sum += state.buckets[Slot(s, state.buckets.size())];
  }
  return sum / static_cast<double>(state.head_second - from + 1);
}

}  // namespace eofaas::control
