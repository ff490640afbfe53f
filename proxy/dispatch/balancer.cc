#include "proxy/dispatch/balancer.h"

#include <algorithm>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"

namespace eofaas::proxy {

Balancer::Balancer(const common::Clock& clock, BalancerOptions options, uint64_t seed)
    : clock_(clock), options_(options), random_state_(seed) {}

std::vector<std::string> Balancer::Update(std::vector<ReplicaInfo> replicas) {
  absl::flat_hash_map<std::string, ReplicaPtr> known;
  for (auto& replica : replicas_) known.emplace(replica->info.address, std::move(replica));
  replicas_.clear();
  std::vector<std::string> stale;
  for (auto& info : replicas) {
    info.concurrency = std::max(info.concurrency, 1);
    // A null entry marks an address already placed in the new set.
    auto [it, is_new] = known.try_emplace(info.address, nullptr);
    if (is_new) {
      replicas_.push_back(std::make_shared<Replica>(Replica{.info = std::move(info)}));
      continue;
    }
    if (it->second == nullptr) continue;  // listed twice
    ReplicaPtr replica = std::move(it->second);
    if (replica->info.generation != info.generation) {
      stale.push_back(info.address);
      replica->consecutive_failures = 0;
      replica->ejections = 0;
      replica->ejected_until = {};
    }
    // The address stays as it is: calls read it without the lock.
    replica->info.concurrency = info.concurrency;
    replica->info.generation = info.generation;
    replicas_.push_back(std::move(replica));
  }
  for (auto& [address, replica] : known) {
    if (replica == nullptr) continue;  // still in the set
    replica->removed = true;
    stale.push_back(address);
  }
  return stale;
}

Balancer::PickResult Balancer::Pick(absl::Span<const ReplicaPtr> avoid) {
  if (replicas_.empty()) return {nullptr, PickError::kNoReplicas};
  std::optional<common::Clock::TimePoint> now;
  // Usable replicas below their concurrency; those in `avoid` apart, as a fallback.
  absl::InlinedVector<const ReplicaPtr*, 16> free;
  absl::InlinedVector<const ReplicaPtr*, 16> free_avoided;
  bool up = false, up_not_avoided = false;
  for (const auto& replica : replicas_) {
    if (Ejected(*replica, now)) continue;
    const bool avoided = std::find(avoid.begin(), avoid.end(), replica) != avoid.end();
    up = true;
    up_not_avoided |= !avoided;
    if (replica->in_flight >= replica->info.concurrency) continue;
    (avoided ? free_avoided : free).push_back(&replica);
  }
  if (!up) return {nullptr, PickError::kAllEjected};
  // Another replica is up: wait for it rather than go back to one that failed this call.
  auto& candidates = up_not_avoided ? free : free_avoided;
  if (candidates.empty()) return {nullptr, PickError::kAtCapacity};
  const size_t first = Random() % candidates.size();
  const ReplicaPtr* chosen = candidates[first];
  if (candidates.size() > 1) {
    size_t second = Random() % (candidates.size() - 1);  // uniform over the others
    if (second == first) second = candidates.size() - 1;
    const Replica& a = **chosen;
    const Replica& b = **candidates[second];
    // Fewer in flight per unit of concurrency, by cross-multiplication.
    if (int64_t{b.in_flight} * a.info.concurrency < int64_t{a.in_flight} * b.info.concurrency) {
      chosen = candidates[second];
    }
  }
  ++(*chosen)->in_flight;
  ++in_flight_;
  return {*chosen, PickError::kNone};
}

bool Balancer::Release(Replica& replica, Result result) {
  --replica.in_flight;
  --in_flight_;
  switch (result) {
    case Result::kSuccess:
      replica.consecutive_failures = 0;
      replica.ejections = 0;
      // An ejection that is over is forgotten: picks need not read the clock for it.
      if (replica.ejected_until != common::Clock::TimePoint{} &&
          clock_.Now() >= replica.ejected_until) {
        replica.ejected_until = {};
      }
      return false;
    case Result::kNeutral:
      return false;
    case Result::kFailure:
      break;
  }
  std::optional<common::Clock::TimePoint> now = clock_.Now();
  if (replica.removed || Ejected(replica, now)) return false;  // late news of an old failure
  ++replica.consecutive_failures;
  // A replica back from an ejection without a success since goes out again at its first failure.
  if (replica.consecutive_failures < options_.eject_after_failures && replica.ejections == 0) {
    return false;
  }
  auto interval = options_.base_ejection;
  for (int i = 0; i < replica.ejections && interval < options_.max_ejection; ++i) interval *= 2;
  ++replica.ejections;
  replica.consecutive_failures = 0;
  replica.ejected_until = *now + std::min(interval, options_.max_ejection);
  return true;
}

int Balancer::Capacity() const {
  std::optional<common::Clock::TimePoint> now;
  int64_t capacity = 0;
  for (const auto& replica : replicas_) {
    if (!Ejected(*replica, now)) capacity += replica->info.concurrency;
  }
  return static_cast<int>(std::min<int64_t>(capacity, std::numeric_limits<int>::max()));
}

uint64_t Balancer::Random() {
  // splitmix64: fast, and good enough to spread picks.
  uint64_t z = (random_state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace eofaas::proxy
