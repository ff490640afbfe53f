// Autoscaler: KPA decisions on a fake clock. The default target is 3 concurrent per replica at
// 0.7 utilisation, i.e. 2.1 concurrent per replica.
#include "control/autoscale/autoscaler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/fakes/fake_clock.h"

namespace eofaas::control {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr absl::string_view kFunction = "thumbnails";

std::string Message(const absl::Status& status) { return std::string(status.message()); }

class AutoscalerTest : public ::testing::Test {
 protected:
  /// Creates the autoscaler from `options_`; tests adjust the options first.
  void Start() {
    auto autoscaler = Autoscaler::Create(options_, clock_);
    ASSERT_TRUE(autoscaler.ok()) << autoscaler.status();
    autoscaler_ = *std::move(autoscaler);
  }

  void Record(double concurrency, absl::string_view source = "proxy-a") {
    ASSERT_TRUE(autoscaler_->Record(kFunction, source, concurrency).ok());
  }

  Decision Decide(int32_t ready) {
    auto decision = autoscaler_->Decide(kFunction, ready, scaling_);
    EXPECT_TRUE(decision.ok()) << decision.status();
    return decision.value_or(Decision{});
  }

  /// One second of a running system: the proxy reports `concurrency`, the autoscaler decides with
  /// `ready_` replicas, the replicas follow the decision at once, and time moves on a second.
  Decision Tick(double concurrency) {
    Record(concurrency);
    Decision decision = Decide(ready_);
    ready_ = decision.desired_replicas;
    clock_.Advance(seconds(1));
    return decision;
  }

  fakes::FakeClock clock_;
  AutoscalerOptions options_;
  ScalingSpec scaling_{.min_replicas = 1, .max_replicas = 100, .target_concurrency = 3};
  int32_t ready_ = 1;
  std::unique_ptr<Autoscaler> autoscaler_;
};

TEST_F(AutoscalerTest, SteadyLoadKeepsAStableCount) {
  Start();
  ready_ = 5;
  // 10 / 2.1 = 4.76: five replicas, second after second.
  for (int t = 0; t < 120; ++t) {
    const Decision decision = Tick(10);
    ASSERT_EQ(decision.desired_replicas, 5) << "t=" << t;
    ASSERT_FALSE(decision.panicking) << "t=" << t;
    ASSERT_EQ(decision.stable_concurrency, 10) << "t=" << t;
    ASSERT_EQ(decision.panic_concurrency, 10) << "t=" << t;
  }
  EXPECT_EQ(Decide(5).reason, "stable: 10.00 concurrent over 60s / 2.10 per replica");
}

TEST_F(AutoscalerTest, ExactMultipleOfTheTargetIsNotRoundedUp) {
  Start();
  ready_ = 10;
  // 21 / (3 × 0.7) is 10.000000000000002 in floating point; it must stay 10.
  for (int t = 0; t < 60; ++t) ASSERT_EQ(Tick(21).desired_replicas, 10) << "t=" << t;
  ready_ = 10;
  EXPECT_EQ(Tick(21.1).desired_replicas, 11);
}

TEST_F(AutoscalerTest, BurstPanicsScalesUpFastAndHoldsUntilCalmForAStableWindow) {
  Start();
  for (int t = 0; t < 60; ++t) ASSERT_EQ(Tick(1).desired_replicas, 1) << "t=" << t;

  // Burst of 30 from t=60. The panic window (6 s) sees it long before the stable window does:
  // t=60: (5×1 + 30)/6 = 5.83 → 3 replicas ≥ 2 × 1 ready: panic.
  std::vector<int32_t> burst;
  for (int t = 60; t < 66; ++t) {
    const Decision decision = Tick(30);
    EXPECT_TRUE(decision.panicking) << "t=" << t;
    burst.push_back(decision.desired_replicas);
  }
  EXPECT_EQ(burst, (std::vector<int32_t>{3, 6, 8, 10, 12, 15}));
  // The stable window alone would still want one replica: (59×1 + 30)/60 = 1.48.
  for (int t = 66; t < 80; ++t) ASSERT_EQ(Tick(30).desired_replicas, 15) << "t=" << t;

  // The load falls to 3 at t=80. The last decision over the threshold was at t=61 (6 wanted for
  // 3 ready), so the count holds at 15 until t=121.
  for (int t = 80; t < 121; ++t) {
    const Decision decision = Tick(3);
    ASSERT_EQ(decision.desired_replicas, 15) << "t=" << t;
    ASSERT_TRUE(decision.panicking) << "t=" << t;
    if (t == 100) {
      // (19×1 + 20×30 + 21×3)/60 = 11.37 → 6 from the stable window; 3 → 2 from the panic one.
      EXPECT_EQ(decision.reason,
                "panic: 11.37 concurrent over 60s / 2.10 per replica; holding 15 while panicking");
    }
  }
  // t=121: calm for 60 s. Stable: (18×30 + 42×3)/60 = 11.1 → 6, but at most halving: 8.
  const Decision calm = Tick(3);
  EXPECT_FALSE(calm.panicking);
  EXPECT_EQ(calm.desired_replicas, 8);
  EXPECT_DOUBLE_EQ(calm.stable_concurrency, 11.1);
  EXPECT_EQ(calm.reason,
            "stable: 11.10 concurrent over 60s / 2.10 per replica; scale-down limited to 8");
  // t=122: (17×30 + 43×3)/60 = 10.65 → 6, within the halving limit of 4.
  EXPECT_EQ(Tick(3).desired_replicas, 6);
}

TEST_F(AutoscalerTest, NoScaleDownWhilePanickingEvenWithFewerReadyReplicas) {
  Start();
  ready_ = 1;
  for (int t = 0; t < 6; ++t) Tick(20);
  EXPECT_EQ(ready_, 10);
  // Load gone, and half the replicas lost: panic still asks for the high-water mark.
  clock_.Advance(seconds(10));
  Record(0);
  const Decision decision = Decide(4);
  EXPECT_TRUE(decision.panicking);
  EXPECT_EQ(decision.desired_replicas, 10);
}

TEST_F(AutoscalerTest, ScaleDownHalvesAtMostPerStep) {
  Start();
  ready_ = 16;
  // 33 / 2.1 = 15.7 → 16.
  for (int t = 0; t < 60; ++t) ASSERT_EQ(Tick(33).desired_replicas, 16) << "t=" << t;
  // A minute at 1 concurrent: the stable window wants one replica at once.
  for (int t = 0; t < 60; ++t) {
    Record(1);
    clock_.Advance(seconds(1));
  }
  std::vector<int32_t> steps;
  int32_t ready = 16;
  for (int step = 0; step < 5; ++step) {
    const Decision decision = Decide(ready);
    if (step == 0) {
      EXPECT_EQ(decision.reason,
                "stable: 1.00 concurrent over 60s / 2.10 per replica; scale-down limited to 8");
    }
    steps.push_back(decision.desired_replicas);
    ready = decision.desired_replicas;
  }
  EXPECT_EQ(steps, (std::vector<int32_t>{8, 4, 2, 1, 1}));
}

TEST_F(AutoscalerTest, ScaleDownRateIsConfigurable) {
  options_.max_scale_down_rate = 4;
  Start();
  for (int t = 0; t < 60; ++t) {
    Record(1);
    clock_.Advance(seconds(1));
  }
  EXPECT_EQ(Decide(16).desired_replicas, 4);
  EXPECT_EQ(Decide(4).desired_replicas, 1);
  // ceil(7 / 4) = 2.
  EXPECT_EQ(Decide(7).desired_replicas, 2);
}

TEST_F(AutoscalerTest, GradualDecayFollowsTheStableAverageDownwards) {
  Start();
  ready_ = 16;
  for (int t = 0; t < 60; ++t) Tick(33);
  int32_t previous = 16;
  for (int k = 0; k < 60; ++k) {
    const Decision decision = Tick(0);
    // At t = 60 + k the window [k+1, 60+k] holds 59 - k seconds at 33.
    const int32_t expected = std::max(1, static_cast<int32_t>(std::ceil(33.0 * (59 - k) / 126)));
    ASSERT_EQ(decision.desired_replicas, expected) << "k=" << k;
    ASSERT_LE(decision.desired_replicas, previous) << "k=" << k;
    ASSERT_GE(decision.desired_replicas, (previous + 1) / 2) << "k=" << k;
    ASSERT_FALSE(decision.panicking) << "k=" << k;
    previous = decision.desired_replicas;
  }
  EXPECT_EQ(previous, 1);
}

TEST_F(AutoscalerTest, IdleScalesToZeroOnlyAfterTheGrace) {
  scaling_.min_replicas = 0;
  Start();
  for (int t = 0; t < 10; ++t) ASSERT_EQ(Tick(1).desired_replicas, 1) << "t=" << t;
  // Nothing from t=10 on: idle since t=10.
  for (int t = 10; t < 70; ++t) {
    const Decision decision = Tick(0);
    ASSERT_EQ(decision.desired_replicas, 1) << "t=" << t;
    if (t == 69) {
      EXPECT_EQ(
          decision.reason,
          "stable: 0.00 concurrent over 60s / 2.10 per replica; scale-down limited to 1; idle 59s "
          "of 60s before scale to zero");
    }
  }
  const Decision zero = Tick(0);
  EXPECT_EQ(zero.desired_replicas, 0);
  EXPECT_EQ(zero.reason, "idle for 60s: scale to zero");
  for (int t = 71; t < 200; ++t) ASSERT_EQ(Tick(0).desired_replicas, 0) << "t=" << t;
}

TEST_F(AutoscalerTest, ScaleToZeroSkipsTheStepLimitOnceIdle) {
  scaling_.min_replicas = 0;
  Start();
  Record(5);
  clock_.Advance(seconds(1));
  for (int t = 1; t < 60; ++t) {
    Record(0);
    clock_.Advance(seconds(1));
  }
  Record(0);
  EXPECT_EQ(Decide(8).desired_replicas, 4);
  clock_.Advance(seconds(1));
  EXPECT_EQ(Decide(4).desired_replicas, 0);
}

TEST_F(AutoscalerTest, KeepsOneReplicaForTheWholeGraceEvenAfterTheWindowsEmptied) {
  scaling_.min_replicas = 0;
  options_.scale_to_zero_grace = seconds(120);
  Start();
  Tick(1);
  for (int t = 1; t < 90; ++t) Tick(0);
  // The stable window has held nothing since t=61; the replica crashes at t=90. Idle for 89 s
  // only: one replica is still wanted.
  Record(0);
  const Decision decision = Decide(0);
  EXPECT_EQ(decision.desired_replicas, 1);
  EXPECT_EQ(decision.reason,
            "stable: 0.00 concurrent over 60s / 2.10 per replica; idle 89s of 120s before scale "
            "to zero");
  clock_.Advance(seconds(31));
  EXPECT_EQ(Decide(0).desired_replicas, 0);
}

TEST_F(AutoscalerTest, PanicHoldsOffScaleToZero) {
  scaling_.min_replicas = 0;
  options_.scale_to_zero_grace = seconds(10);
  Start();
  // t=0: 20 / 2.1 → 10 ≥ 2 × 1: panic. Idle from t=1.
  EXPECT_EQ(Tick(20).desired_replicas, 10);
  for (int t = 1; t < 60; ++t) {
    const Decision decision = Tick(0);
    ASSERT_EQ(decision.desired_replicas, 10) << "t=" << t;
    ASSERT_TRUE(decision.panicking) << "t=" << t;
  }
  const Decision decision = Tick(0);
  EXPECT_FALSE(decision.panicking);
  EXPECT_EQ(decision.desired_replicas, 0);
  EXPECT_EQ(decision.reason, "idle for 59s: scale to zero");
}

TEST_F(AutoscalerTest, GraceIsConfigurable) {
  scaling_.min_replicas = 0;
  options_.scale_to_zero_grace = seconds(30);
  Start();
  Tick(2);
  for (int t = 1; t < 31; ++t) ASSERT_EQ(Tick(0).desired_replicas, 1) << "t=" << t;
  EXPECT_EQ(Tick(0).desired_replicas, 0);
}

TEST_F(AutoscalerTest, GraceCountsFromTheFirstDecisionWithoutSamples) {
  // After a restart nothing is known yet: a running replica is kept for the whole grace.
  scaling_.min_replicas = 0;
  Start();
  for (int t = 0; t < 60; ++t) {
    ASSERT_EQ(Decide(1).desired_replicas, 1) << "t=" << t;
    clock_.Advance(seconds(1));
  }
  EXPECT_EQ(Decide(1).desired_replicas, 0);
}

TEST_F(AutoscalerTest, AFunctionResumedAtZeroStaysThereUntilItHasLoad) {
  scaling_.min_replicas = 0;
  Start();
  autoscaler_->ResumeAtZero(kFunction);
  for (int t = 0; t < 10; ++t) {
    ASSERT_EQ(Decide(0).desired_replicas, 0) << "t=" << t;
    clock_.Advance(seconds(1));
  }
  Record(1);
  EXPECT_EQ(Decide(0).desired_replicas, 1);
}

TEST_F(AutoscalerTest, IdleNeverGoesBelowMinReplicas) {
  Start();
  Tick(1);
  for (int t = 1; t < 300; ++t) ASSERT_EQ(Tick(0).desired_replicas, 1) << "t=" << t;

  scaling_.min_replicas = 2;
  ready_ = 2;
  for (int t = 0; t < 300; ++t) ASSERT_EQ(Tick(0).desired_replicas, 2) << "t=" << t;
  EXPECT_THAT(Decide(2).reason, HasSubstr("; raised to min_replicas 2"));
}

TEST_F(AutoscalerTest, FromZeroTheFirstRequestWantsOneReplicaAtOnce) {
  scaling_.min_replicas = 0;
  Start();
  ready_ = 0;
  // A new function keeps one replica (even while none is ready) until idle for the grace.
  for (int t = 0; t < 300; ++t) {
    ASSERT_EQ(Tick(0).desired_replicas, t < 60 ? 1 : 0) << "t=" << t;
  }
  // One held request: 1/60 over the stable window, still one replica in the same second.
  Record(1);
  const Decision decision = Decide(0);
  EXPECT_EQ(decision.desired_replicas, 1);
  EXPECT_FALSE(decision.panicking);
  EXPECT_DOUBLE_EQ(decision.stable_concurrency, 1.0 / 60);
  EXPECT_DOUBLE_EQ(decision.panic_concurrency, 1.0 / 6);
}

TEST_F(AutoscalerTest, NewFunctionCountsItsFirstSamplesInFull) {
  scaling_.min_replicas = 0;
  Start();
  // Without demand a new function keeps one replica, ready or not, until idle for the grace.
  EXPECT_EQ(Decide(0).desired_replicas, 1);
  clock_.Advance(seconds(1));
  // Five held requests: averaged over the two seconds seen, 2.5 → 2 replicas.
  Record(5);
  const Decision decision = Decide(0);
  EXPECT_DOUBLE_EQ(decision.stable_concurrency, 2.5);
  EXPECT_EQ(decision.desired_replicas, 2);
  EXPECT_TRUE(decision.panicking);
}

TEST_F(AutoscalerTest, FlappingLoadDoesNotOscillate) {
  Start();
  // 3 s at 30, 3 s idle, from the first second. The first second panics (30 / 2.1 → 15 for one
  // ready); the high-water mark holds for a stable window, then every 60 s and 6 s window holds
  // exactly ten or one period, 15 on average → 8 replicas, too few to panic again (8 < 2 × 8).
  for (int t = 0; t < 300; ++t) {
    const Decision decision = Tick(t % 6 < 3 ? 30 : 0);
    if (t < 60) {
      ASSERT_EQ(decision.desired_replicas, 15) << "t=" << t;
      ASSERT_TRUE(decision.panicking) << "t=" << t;
    } else {
      ASSERT_EQ(decision.desired_replicas, 8) << "t=" << t;
      ASSERT_FALSE(decision.panicking) << "t=" << t;
      ASSERT_EQ(decision.panic_concurrency, 15) << "t=" << t;
    }
  }
}

TEST_F(AutoscalerTest, FlappingLoadOutOfStepWithTheWindowsStaysInABand) {
  Start();
  ready_ = 8;
  // 4 s at 30, 3 s idle: a 60 s window holds 32 to 36 busy seconds (16 to 18 concurrent, 8 or 9
  // replicas) and the 6 s window 3 or 4 (15 to 20 concurrent, at most 10 < 2 × 8: no panic).
  // The count follows the load's own period by one replica: one step up and one down per period,
  // never further.
  int32_t low = std::numeric_limits<int32_t>::max();
  int32_t high = 0;
  int changes = 0;
  int32_t previous = 0;
  for (int t = 0; t < 600; ++t) {
    const Decision decision = Tick(t % 7 < 4 ? 30 : 0);
    ASSERT_FALSE(decision.panicking) << "t=" << t;
    if (t < 60) continue;
    low = std::min(low, decision.desired_replicas);
    high = std::max(high, decision.desired_replicas);
    if (t > 60 && decision.desired_replicas != previous) ++changes;
    previous = decision.desired_replicas;
  }
  EXPECT_EQ(low, 8);
  EXPECT_EQ(high, 9);
  // 77 periods from t=61 to t=599.
  EXPECT_EQ(changes, 2 * 77);
}

TEST_F(AutoscalerTest, PanicProvisionsForTheLargerWindow) {
  Start();
  ready_ = 20;
  // 40 / 2.1 = 19.05 → 20.
  for (int t = 0; t < 60; ++t) ASSERT_EQ(Tick(40).desired_replicas, 20) << "t=" << t;
  // Fifteen replicas are lost and the load eases to 25 at t=60. Panic window: (5×40 + 25)/6 =
  // 37.5 → 18 ≥ 2 × 5. The stable window still holds more: (59×40 + 25)/60 = 39.75 → 19.
  Record(25);
  const Decision decision = Decide(5);
  EXPECT_TRUE(decision.panicking);
  EXPECT_EQ(decision.desired_replicas, 19);
  EXPECT_EQ(decision.reason, "panic: 39.75 concurrent over 60s / 2.10 per replica");
}

TEST_F(AutoscalerTest, NeverBelowTheReadyCountWhilePanicking) {
  Start();
  for (int t = 0; t < 6; ++t) Tick(20);
  ASSERT_EQ(ready_, 10);
  // The spec's minimum rises above the panic high-water mark and falls back while the panic
  // lasts: the replicas started for it stay until the panic ends.
  scaling_.min_replicas = 14;
  EXPECT_EQ(Tick(20).desired_replicas, 14);
  scaling_.min_replicas = 1;
  const Decision decision = Tick(20);
  EXPECT_TRUE(decision.panicking);
  EXPECT_EQ(decision.desired_replicas, 14);
  EXPECT_EQ(decision.reason,
            "panic: 20.00 concurrent over 6s / 2.10 per replica; holding 14 while panicking");
}

TEST_F(AutoscalerTest, ScaleUpRateLimitsEachStep) {
  options_.max_scale_up_rate = 2;
  Start();
  // 30 concurrent wants 15; each step may at most double the ready count.
  const Decision first = Tick(30);
  EXPECT_EQ(first.reason,
            "panic: 30.00 concurrent over 6s / 2.10 per replica; scale-up limited to 2");
  std::vector<int32_t> steps = {first.desired_replicas};
  for (int t = 1; t < 5; ++t) steps.push_back(Tick(30).desired_replicas);
  EXPECT_EQ(steps, (std::vector<int32_t>{2, 4, 8, 15, 15}));
}

TEST_F(AutoscalerTest, MaxReplicasCaps) {
  scaling_.max_replicas = 4;
  Start();
  const Decision decision = Tick(30);
  EXPECT_EQ(decision.desired_replicas, 4);
  EXPECT_EQ(decision.reason,
            "panic: 30.00 concurrent over 6s / 2.10 per replica; capped at max_replicas 4");
}

TEST_F(AutoscalerTest, SourcesAreSummedAndExpire) {
  Start();
  ready_ = 5;
  for (int t = 0; t < 10; ++t) {
    Record(4, "proxy-a");
    Record(6, "proxy-b");
    const Decision decision = Decide(5);
    ASSERT_EQ(decision.panic_concurrency, 10) << "t=" << t;
    ASSERT_EQ(decision.desired_replicas, 5) << "t=" << t;
    clock_.Advance(seconds(1));
  }
  // proxy-b last reported at t=9; its 6 counts through t=14 (5 s TTL), then it is gone.
  for (int t = 10; t < 15; ++t) {
    Record(4, "proxy-a");
    ASSERT_EQ(Decide(5).panic_concurrency, 10) << "t=" << t;
    clock_.Advance(seconds(1));
  }
  Record(4, "proxy-a");
  EXPECT_EQ(Decide(5).panic_concurrency, (5 * 10 + 4) / 6.0);
  for (int t = 16; t < 21; ++t) {
    Record(4, "proxy-a");
    clock_.Advance(seconds(1));
  }
  Record(4, "proxy-a");
  EXPECT_EQ(Decide(5).panic_concurrency, 4);
  // A source that comes back counts again.
  Record(3, "proxy-b");
  EXPECT_EQ(Decide(5).panic_concurrency, (5 * 4 + 7) / 6.0);
}

TEST_F(AutoscalerTest, LatestSampleOfASourceWinsWithinASecond) {
  Start();
  Record(4, "proxy-a");
  Record(6, "proxy-b");
  clock_.Advance(milliseconds(500));
  Record(7, "proxy-a");
  EXPECT_EQ(Decide(1).panic_concurrency, 13);
  clock_.Advance(milliseconds(499));
  Record(1, "proxy-a");
  EXPECT_EQ(Decide(1).panic_concurrency, 7);
}

TEST_F(AutoscalerTest, AMissedSecondCarriesTheLastSample) {
  Start();
  ready_ = 2;
  for (int t = 0; t < 12; ++t) {
    if (t % 2 == 0) Record(4);
    ASSERT_EQ(Decide(2).panic_concurrency, 4) << "t=" << t;
    clock_.Advance(seconds(1));
  }
}

TEST_F(AutoscalerTest, LongSilenceEmptiesTheWindows) {
  Start();
  for (int t = 0; t < 10; ++t) Tick(5);
  clock_.Advance(std::chrono::hours(1));
  Record(2);
  const Decision decision = Decide(3);
  EXPECT_DOUBLE_EQ(decision.stable_concurrency, 2.0 / 60);
  EXPECT_DOUBLE_EQ(decision.panic_concurrency, 2.0 / 6);
}

TEST_F(AutoscalerTest, ForgetDropsTheHistory) {
  Start();
  for (int t = 0; t < 10; ++t) Tick(20);
  autoscaler_->Forget(kFunction);
  const Decision decision = Decide(10);
  EXPECT_EQ(decision.stable_concurrency, 0);
  EXPECT_FALSE(decision.panicking);
  EXPECT_EQ(decision.desired_replicas, 5);
  // Functions are independent.
  ASSERT_TRUE(autoscaler_->Record("other", "proxy-a", 9).ok());
  EXPECT_EQ(Decide(5).stable_concurrency, 0);
}

TEST_F(AutoscalerTest, ConcurrentCallersAreSerialised) {
  Start();
  // Proxies report and the control loop decides, while other functions come and go.
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([this, i] {
      const std::string source = "proxy-" + std::to_string(i);
      for (int n = 0; n < 2000; ++n) {
        ASSERT_TRUE(autoscaler_->Record(kFunction, source, n).ok());
        ASSERT_TRUE(autoscaler_->Decide(kFunction, 1, scaling_).ok());
        const std::string other = absl::StrCat("other-", i, "-", n % 16);
        ASSERT_TRUE(autoscaler_->Record(other, source, 1).ok());
        autoscaler_->Forget(absl::StrCat("other-", i, "-", (n + 8) % 16));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(Decide(1).panic_concurrency, 4 * 1999);
}

TEST_F(AutoscalerTest, RejectsBadSamplesAndSpecs) {
  Start();
  EXPECT_EQ(autoscaler_->Record(kFunction, "proxy-a", -1).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(autoscaler_->Record(kFunction, "proxy-a", std::nan("")).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      autoscaler_->Record(kFunction, "proxy-a", std::numeric_limits<double>::infinity()).code(),
      absl::StatusCode::kInvalidArgument);

  auto decide = [&](int32_t ready, ScalingSpec spec) {
    return autoscaler_->Decide(kFunction, ready, spec).status();
  };
  const ScalingSpec good{.min_replicas = 0, .max_replicas = 2, .target_concurrency = 3};
  EXPECT_TRUE(decide(0, good).ok());
  EXPECT_THAT(Message(decide(-1, good)), StartsWith("ready_replicas:"));
  EXPECT_THAT(Message(decide(0, {.min_replicas = -1, .max_replicas = 2, .target_concurrency = 3})),
              StartsWith("scaling.min_replicas:"));
  EXPECT_THAT(Message(decide(0, {.min_replicas = 3, .max_replicas = 2, .target_concurrency = 3})),
              StartsWith("scaling.max_replicas:"));
  EXPECT_THAT(Message(decide(0, {.min_replicas = 0, .max_replicas = 0, .target_concurrency = 3})),
              StartsWith("scaling.max_replicas:"));
  EXPECT_THAT(Message(decide(0, {.min_replicas = 0, .max_replicas = 2, .target_concurrency = 0})),
              StartsWith("scaling.target_concurrency:"));
  EXPECT_EQ(decide(-1, good).code(), absl::StatusCode::kInvalidArgument);
}

TEST(AutoscalerOptionsTest, DefaultsAreValid) { EXPECT_TRUE(AutoscalerOptions{}.Validate().ok()); }

TEST(AutoscalerOptionsTest, EachFieldIsChecked) {
  struct Case {
    std::string field;
    void (*breaks)(AutoscalerOptions&);
  };
  const std::vector<Case> cases = {
      {"stable_window", [](AutoscalerOptions& o) { o.stable_window = seconds(0); }},
      {"stable_window", [](AutoscalerOptions& o) { o.stable_window = seconds(3601); }},
      {"panic_window", [](AutoscalerOptions& o) { o.panic_window = seconds(0); }},
      {"panic_window", [](AutoscalerOptions& o) { o.panic_window = seconds(61); }},
      {"panic_threshold", [](AutoscalerOptions& o) { o.panic_threshold = 1.0; }},
      {"panic_threshold", [](AutoscalerOptions& o) { o.panic_threshold = std::nan(""); }},
      {"target_utilisation", [](AutoscalerOptions& o) { o.target_utilisation = 0; }},
      {"target_utilisation", [](AutoscalerOptions& o) { o.target_utilisation = 1.01; }},
      {"max_scale_up_rate", [](AutoscalerOptions& o) { o.max_scale_up_rate = 1.0; }},
      {"max_scale_up_rate",
       [](AutoscalerOptions& o) { o.max_scale_up_rate = std::numeric_limits<double>::infinity(); }},
      {"max_scale_down_rate", [](AutoscalerOptions& o) { o.max_scale_down_rate = 1.0; }},
      {"scale_to_zero_grace", [](AutoscalerOptions& o) { o.scale_to_zero_grace = seconds(0); }},
      {"scale_to_zero_grace",
       [](AutoscalerOptions& o) { o.scale_to_zero_grace = std::chrono::hours(25); }},
      {"source_ttl", [](AutoscalerOptions& o) { o.source_ttl = seconds(0); }},
  };
  fakes::FakeClock clock;
  for (const Case& c : cases) {
    AutoscalerOptions options;
    c.breaks(options);
    const absl::Status status = options.Validate();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(std::string(status.message()), StartsWith(c.field + ":"));
    EXPECT_EQ(Autoscaler::Create(options, clock).status(), status) << c.field;
  }
}

TEST(AutoscalerOptionsTest, BoundariesAreAccepted) {
  AutoscalerOptions options;
  options.stable_window = seconds(1);
  options.panic_window = seconds(1);
  options.target_utilisation = 1.0;
  options.source_ttl = seconds(1);
  EXPECT_TRUE(options.Validate().ok());
}

}  // namespace
}  // namespace eofaas::control
