// RestartBackoff: delays, reset after a stable run, crash-loop verdict, all on a fake clock.
#include "control/deploy/restart_backoff.h"

#include <gtest/gtest.h>

#include "tests/fakes/fake_clock.h"

namespace eofaas::control {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class RestartBackoffTest : public ::testing::Test {
 protected:
  fakes::FakeClock clock_;
  RestartBackoffOptions options_;
};

TEST_F(RestartBackoffTest, FirstStartIsAllowed) {
  RestartBackoff backoff(options_, clock_);
  EXPECT_TRUE(backoff.MayStart());
  EXPECT_FALSE(backoff.CrashLooping());
}

TEST_F(RestartBackoffTest, DelayDoublesUpToTheCap) {
  RestartBackoff backoff(options_, clock_);
  std::vector<milliseconds> delays;
  for (int i = 0; i < 10; ++i) {
    backoff.RecordStart();
    delays.push_back(backoff.RecordCrash());
  }
  const std::vector<milliseconds> expected = {
      milliseconds(100),  milliseconds(200),  milliseconds(400),  milliseconds(800),
      milliseconds(1600), milliseconds(3200), milliseconds(6400), seconds(10),
      seconds(10),        seconds(10)};
  EXPECT_EQ(delays, expected);
}

TEST_F(RestartBackoffTest, MayStartOnceTheDelayHasPassed) {
  RestartBackoff backoff(options_, clock_);
  backoff.RecordStart();
  backoff.RecordCrash();
  backoff.RecordStart();
  EXPECT_EQ(backoff.RecordCrash(), milliseconds(200));
  EXPECT_FALSE(backoff.MayStart());
  clock_.Advance(milliseconds(199));
  EXPECT_FALSE(backoff.MayStart());
  clock_.Advance(milliseconds(1));
  EXPECT_TRUE(backoff.MayStart());
}

TEST_F(RestartBackoffTest, StableRunResetsTheDelay) {
  RestartBackoff backoff(options_, clock_);
  for (int i = 0; i < 4; ++i) {
    backoff.RecordStart();
    backoff.RecordCrash();
  }
  backoff.RecordStart();
  clock_.Advance(seconds(29));
  EXPECT_EQ(backoff.RecordCrash(), milliseconds(1600));
  backoff.RecordStart();
  clock_.Advance(seconds(30));
  EXPECT_EQ(backoff.RecordCrash(), milliseconds(100));
}

TEST_F(RestartBackoffTest, CrashLoopingAfterThreeCrashesWithinTheWindow) {
  RestartBackoff backoff(options_, clock_);
  backoff.RecordStart();
  backoff.RecordCrash();
  clock_.Advance(seconds(20));
  backoff.RecordStart();
  backoff.RecordCrash();
  EXPECT_FALSE(backoff.CrashLooping());
  clock_.Advance(seconds(20));
  backoff.RecordStart();
  backoff.RecordCrash();
  EXPECT_TRUE(backoff.CrashLooping());
  // The first crash leaves the 60 s window.
  clock_.Advance(seconds(21));
  EXPECT_FALSE(backoff.CrashLooping());
}

TEST_F(RestartBackoffTest, SpreadOutCrashesAreNotALoop) {
  RestartBackoff backoff(options_, clock_);
  for (int i = 0; i < 5; ++i) {
    backoff.RecordStart();
    clock_.Advance(seconds(31));
    backoff.RecordCrash();
    EXPECT_FALSE(backoff.CrashLooping()) << "crash " << i;
  }
}

TEST_F(RestartBackoffTest, StableRunEndsTheCrashLoop) {
  RestartBackoff backoff(options_, clock_);
  for (int i = 0; i < 3; ++i) {
    backoff.RecordStart();
    backoff.RecordCrash();
  }
  EXPECT_TRUE(backoff.CrashLooping());
  backoff.RecordStart();
  clock_.Advance(seconds(29));
  EXPECT_TRUE(backoff.CrashLooping());
  clock_.Advance(seconds(1));
  EXPECT_FALSE(backoff.CrashLooping());
}

TEST_F(RestartBackoffTest, OptionsAreHonoured) {
  options_.initial_delay = seconds(1);
  options_.multiplier = 3;
  options_.max_delay = seconds(5);
  options_.crash_loop_crashes = 2;
  options_.crash_loop_window = seconds(5);
  RestartBackoff backoff(options_, clock_);
  backoff.RecordStart();
  EXPECT_EQ(backoff.RecordCrash(), seconds(1));
  EXPECT_FALSE(backoff.CrashLooping());
  backoff.RecordStart();
  EXPECT_EQ(backoff.RecordCrash(), seconds(3));
  EXPECT_TRUE(backoff.CrashLooping());
  backoff.RecordStart();
  EXPECT_EQ(backoff.RecordCrash(), seconds(5));
}

}  // namespace
}  // namespace eofaas::control
