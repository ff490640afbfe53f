// Chooses the replica of one function that runs the next invocation: least outstanding requests
// among two random choices, within each replica's concurrency, skipping replicas ejected after
// consecutive transport failures.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "common/clock.h"

namespace eofaas::proxy {

/// A replica as discovery reports it.
struct ReplicaInfo {
  /// host:port of its HTTP server.
  std::string address;
  /// Invocations it runs at once; values below 1 count as 1.
  int concurrency = 1;
  int64_t generation = 0;
};

struct BalancerOptions {
  /// Consecutive transport failures that eject a replica.
  int eject_after_failures = 5;
  /// The first ejection lasts this long; each further one (without a success in between) doubles
  /// it, up to `max_ejection`.
  std::chrono::nanoseconds base_ejection = std::chrono::seconds(1);
  std::chrono::nanoseconds max_ejection = std::chrono::seconds(30);
};

/// The replica set of one function and the state the choice needs. Thread-compatible: the
/// dispatcher serializes every call under the function's mutex.
class Balancer {
 public:
  /// One replica's state. A picked replica stays valid (shared) until its slot is released, even
  /// after Update removed it from the set.
  struct Replica {
    /// `info.address` never changes (it may be read without synchronization); the rest is
    /// guarded like the balancer.
    ReplicaInfo info;
    int in_flight = 0;
    int consecutive_failures = 0;
    /// Ejections since the last success: sets the length of the next one.
    int ejections = 0;
    common::Clock::TimePoint ejected_until{};
    bool removed = false;
  };
  using ReplicaPtr = std::shared_ptr<Replica>;

  enum class PickError {
    kNone,
    /// Every usable replica runs as many invocations as its concurrency allows: wait.
    kAtCapacity,
    kNoReplicas,
    kAllEjected,
  };
  struct PickResult {
    ReplicaPtr replica;  ///< set when error is kNone
    PickError error = PickError::kNone;
  };

  /// How an invocation on a replica went, for ejection.
  enum class Result {
    kSuccess,  ///< The replica answered: resets its failure count.
    kFailure,  ///< Transport failure or 5xx: counts toward ejection.
    kNeutral,  ///< Says nothing about the replica (429, deadline, cancellation).
  };

  /// `clock` must outlive the balancer; `seed` drives the random choices.
  Balancer(const common::Clock& clock, BalancerOptions options, uint64_t seed);

  /// Replaces the replica set. A replica whose address is already known keeps its state
  /// (in-flight count, failures, ejection); a new generation at the same address starts with a
  /// clean failure record. Returns the addresses whose old connections are now useless: removed,
  /// or serving a new generation.
  std::vector<std::string> Update(std::vector<ReplicaInfo> replicas);

  /// Takes one concurrency slot: of two random usable replicas (not ejected, below their
  /// concurrency), the one with fewer invocations in flight relative to its concurrency. Replicas
  /// in `avoid` (tried already) are used only when no other replica is up.
  PickResult Pick(absl::Span<const ReplicaPtr> avoid = {});

  /// Gives back the slot of a picked replica. Returns true when this failure ejected it.
  bool Release(Replica& replica, Result result);

  const std::vector<ReplicaPtr>& replicas() const { return replicas_; }
  /// Slots taken and not released, removed replicas included.
  int in_flight() const { return in_flight_; }
  /// Total concurrency of the replicas not ejected now, at most INT_MAX.
  int Capacity() const;

 private:
  // `now` is read from the clock when first needed: a replica with no ejection on record (the
  // usual case) needs none.
  bool Ejected(const Replica& replica, std::optional<common::Clock::TimePoint>& now) const {
    if (replica.ejected_until == common::Clock::TimePoint{}) return false;
    if (!now) now = clock_.Now();
    return *now < replica.ejected_until;
  }
  uint64_t Random();

  const common::Clock& clock_;
  const BalancerOptions options_;
  uint64_t random_state_;
  std::vector<ReplicaPtr> replicas_;
  int in_flight_ = 0;
};

}  // namespace eofaas::proxy
