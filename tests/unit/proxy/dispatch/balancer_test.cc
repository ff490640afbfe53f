#include "proxy/dispatch/balancer.h"

#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <string>
#include <vector>

#include "tests/fakes/fake_clock.h"

namespace eofaas::proxy {
namespace {

using namespace std::chrono_literals;
using PickError = Balancer::PickError;
using Result = Balancer::Result;

class BalancerTest : public ::testing::Test {
 protected:
  BalancerTest() : balancer_(clock_, BalancerOptions{}, 42) {}

  Balancer::ReplicaPtr Pick(std::vector<Balancer::ReplicaPtr> avoid = {}) {
    auto pick = balancer_.Pick(avoid);
    EXPECT_EQ(pick.error, PickError::kNone);
    return pick.replica;
  }
  // Picks and fails `address` until it is ejected; returns how many failures that took.
  int FailUntilEjected(const std::string& address) {
    for (int failures = 1; failures <= 100; ++failures) {
      auto replica = Pick();
      EXPECT_EQ(replica->info.address, address);
      if (balancer_.Release(*replica, Result::kFailure)) return failures;
    }
    return -1;
  }

  fakes::FakeClock clock_;
  Balancer balancer_;
};

TEST_F(BalancerTest, EmptySetHasNoReplicas) {
  EXPECT_EQ(balancer_.Pick().error, PickError::kNoReplicas);
}

TEST_F(BalancerTest, PowerOfTwoChoicesNeverPicksTheMostLoaded) {
  balancer_.Update({{"a:1", 100, 1}, {"b:1", 100, 1}, {"c:1", 100, 1}});
  // Load c with 10 requests, b with 5: with two random choices the most loaded one never wins.
  std::map<std::string, Balancer::ReplicaPtr> by_address;
  for (const auto& replica : balancer_.replicas()) by_address[replica->info.address] = replica;
  by_address["c:1"]->in_flight = 10;
  by_address["b:1"]->in_flight = 5;
  std::map<std::string, int> picks;
  for (int i = 0; i < 300; ++i) {
    auto replica = Pick();
    ++picks[replica->info.address];
    balancer_.Release(*replica, Result::kSuccess);
  }
  EXPECT_EQ(picks["c:1"], 0);
  // a is the least loaded of every pair it is in (2 of 3 pairs).
  EXPECT_GT(picks["a:1"], 150);
}

TEST_F(BalancerTest, SpreadsLoadEvenlyWhenHeld) {
  balancer_.Update({{"a:1", 10, 1}, {"b:1", 10, 1}});
  std::vector<Balancer::ReplicaPtr> held;
  for (int i = 0; i < 10; ++i) held.push_back(Pick());
  for (const auto& replica : balancer_.replicas()) EXPECT_EQ(replica->in_flight, 5);
  EXPECT_EQ(balancer_.in_flight(), 10);
}

TEST_F(BalancerTest, LoadIsRelativeToConcurrency) {
  balancer_.Update({{"small:1", 2, 1}, {"big:1", 8, 1}});
  std::map<std::string, int> held;
  for (int i = 0; i < 5; ++i) ++held[Pick()->info.address];
  EXPECT_EQ(held["small:1"], 1);
  EXPECT_EQ(held["big:1"], 4);
}

TEST_F(BalancerTest, ReplicaAtItsConcurrencyIsNotPicked) {
  balancer_.Update({{"a:1", 2, 1}, {"b:1", 1, 1}});
  Pick();
  Pick();
  Pick();
  EXPECT_EQ(balancer_.Pick().error, PickError::kAtCapacity);
  balancer_.Release(*balancer_.replicas()[1], Result::kSuccess);
  EXPECT_EQ(Pick()->info.address, "b:1");
}

TEST_F(BalancerTest, AvoidedReplicaIsTakenOnlyWhenNoOtherIsUp) {
  balancer_.Update({{"a:1", 1, 1}, {"b:1", 1, 1}});
  auto a = balancer_.replicas()[0];
  auto b = balancer_.replicas()[1];
  EXPECT_EQ(Pick({a}), b);
  // b is busy and a was tried: wait for b rather than go back to a.
  EXPECT_EQ(balancer_.Pick({a}).error, PickError::kAtCapacity);
  // Both tried: either will do.
  EXPECT_EQ(Pick({a, b}), a);
}

// A Map without max_in_flight takes the capacity as its window: a sum that overflowed would turn
// negative and shrink the window to one item.
TEST_F(BalancerTest, CapacityStopsAtTheLargestInt) {
  const int most = std::numeric_limits<int>::max();
  balancer_.Update({{"a:1", most, 1}, {"b:1", most, 1}});
  EXPECT_EQ(balancer_.Capacity(), most);
  balancer_.Update({{"a:1", 3, 1}, {"b:1", 4, 1}});
  EXPECT_EQ(balancer_.Capacity(), 7);
}

TEST_F(BalancerTest, EjectsAfterConsecutiveFailuresForAGrowingInterval) {
  balancer_.Update({{"a:1", 4, 1}});
  EXPECT_EQ(FailUntilEjected("a:1"), BalancerOptions{}.eject_after_failures);
  EXPECT_EQ(balancer_.Pick().error, PickError::kAllEjected);
  EXPECT_EQ(balancer_.Capacity(), 0);

  clock_.Advance(999ms);
  EXPECT_EQ(balancer_.Pick().error, PickError::kAllEjected);
  clock_.Advance(1ms);
  // Back after 1 s; without a success since, its first failure ejects it again, for 2 s.
  EXPECT_EQ(FailUntilEjected("a:1"), 1);
  clock_.Advance(1999ms);
  EXPECT_EQ(balancer_.Pick().error, PickError::kAllEjected);
  clock_.Advance(1ms);
  EXPECT_EQ(FailUntilEjected("a:1"), 1);  // 4 s now
  clock_.Advance(4s);
  // A success clears the record: it takes the full count again, and 1 s.
  balancer_.Release(*Pick(), Result::kSuccess);
  EXPECT_EQ(FailUntilEjected("a:1"), BalancerOptions{}.eject_after_failures);
  clock_.Advance(1s);
  EXPECT_EQ(Pick()->info.address, "a:1");
}

TEST_F(BalancerTest, EjectionIntervalIsCapped) {
  balancer_.Update({{"a:1", 4, 1}});
  FailUntilEjected("a:1");
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(30s);
    FailUntilEjected("a:1");
  }
  clock_.Advance(29s);
  EXPECT_EQ(balancer_.Pick().error, PickError::kAllEjected);
  clock_.Advance(1s);
  EXPECT_EQ(balancer_.Pick().error, PickError::kNone);
}

TEST_F(BalancerTest, NeutralResultsAndSuccessesBreakNoStreak) {
  balancer_.Update({{"a:1", 4, 1}});
  for (int i = 0; i < 20; ++i) {
    EXPECT_FALSE(balancer_.Release(*Pick(), i % 4 == 3 ? Result::kSuccess : Result::kFailure));
    EXPECT_FALSE(balancer_.Release(*Pick(), Result::kNeutral));
  }
}

TEST_F(BalancerTest, FailuresFinishingDuringAnEjectionDoNotExtendIt) {
  balancer_.Update({{"a:1", 10, 1}});
  std::vector<Balancer::ReplicaPtr> held;
  for (int i = 0; i < 8; ++i) held.push_back(Pick());
  int ejections = 0;
  for (auto& replica : held) ejections += balancer_.Release(*replica, Result::kFailure);
  EXPECT_EQ(ejections, 1);
  clock_.Advance(1s);
  EXPECT_EQ(balancer_.Pick().error, PickError::kNone);
}

TEST_F(BalancerTest, UpdateKeepsTheStateOfKnownReplicas) {
  balancer_.Update({{"a:1", 2, 1}, {"b:1", 2, 1}});
  auto a = balancer_.replicas()[0];
  ++a->consecutive_failures;
  auto held = Pick({balancer_.replicas()[1]});  // a
  ASSERT_EQ(held, a);

  auto stale = balancer_.Update({{"b:1", 2, 1}, {"a:1", 5, 1}, {"c:1", 1, 1}});
  EXPECT_TRUE(stale.empty());
  ASSERT_EQ(balancer_.replicas().size(), 3u);
  EXPECT_EQ(balancer_.replicas()[1], a);
  EXPECT_EQ(a->in_flight, 1);
  EXPECT_EQ(a->info.concurrency, 5);
  EXPECT_EQ(a->consecutive_failures, 1);
}

TEST_F(BalancerTest, RemovedReplicaReleasesCleanly) {
  balancer_.Update({{"a:1", 1, 1}});
  auto held = Pick();
  auto stale = balancer_.Update({{"b:1", 1, 1}});
  EXPECT_EQ(stale, std::vector<std::string>{"a:1"});
  EXPECT_TRUE(held->removed);
  EXPECT_EQ(balancer_.in_flight(), 1);
  EXPECT_FALSE(balancer_.Release(*held, Result::kFailure));
  EXPECT_EQ(balancer_.in_flight(), 0);
  // The replica that replaced it is free.
  EXPECT_EQ(Pick()->info.address, "b:1");
}

TEST_F(BalancerTest, NewGenerationAtTheSameAddressStartsClean) {
  balancer_.Update({{"a:1", 2, 1}});
  FailUntilEjected("a:1");
  auto stale = balancer_.Update({{"a:1", 2, 2}});
  EXPECT_EQ(stale, std::vector<std::string>{"a:1"});
  EXPECT_EQ(Pick()->info.generation, 2);
}

TEST_F(BalancerTest, ShrunkConcurrencyWaitsForInFlightWork) {
  balancer_.Update({{"a:1", 3, 1}});
  auto one = Pick();
  auto two = Pick();
  balancer_.Update({{"a:1", 1, 1}});
  EXPECT_EQ(balancer_.Pick().error, PickError::kAtCapacity);
  balancer_.Release(*one, Result::kSuccess);
  EXPECT_EQ(balancer_.Pick().error, PickError::kAtCapacity);
  balancer_.Release(*two, Result::kSuccess);
  EXPECT_EQ(balancer_.Pick().error, PickError::kNone);
}

TEST_F(BalancerTest, DuplicateAddressesCountOnce) {
  balancer_.Update({{"a:1", 1, 1}, {"a:1", 1, 1}});
  EXPECT_EQ(balancer_.replicas().size(), 1u);
  balancer_.Update({{"a:1", 1, 1}, {"a:1", 1, 1}});
  EXPECT_EQ(balancer_.replicas().size(), 1u);
}

TEST_F(BalancerTest, ConcurrencyBelowOneCountsAsOne) {
  balancer_.Update({{"a:1", 0, 1}});
  Pick();
  EXPECT_EQ(balancer_.Pick().error, PickError::kAtCapacity);
}

}  // namespace
}  // namespace eofaas::proxy
