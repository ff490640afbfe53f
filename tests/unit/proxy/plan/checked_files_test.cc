// CheckedFiles: passed verdicts kept for their time to live, failures never, memory bounded.
#include "proxy/plan/checked_files.h"

#include <gtest/gtest.h>

#include <chrono>

#include "tests/fakes/fake_clock.h"

namespace eofaas::proxy {
namespace {

using std::chrono_literals::operator""ms;

TEST(CheckedFilesTest, APassedPathIsFreshForItsTimeToLive) {
  fakes::FakeClock clock;
  CheckedFiles checked(clock, absl::Seconds(1));
  EXPECT_FALSE(checked.Fresh("/data/a.txt"));
  checked.Passed("/data/a.txt");
  EXPECT_TRUE(checked.Fresh("/data/a.txt"));
  EXPECT_FALSE(checked.Fresh("/data/b.txt"));
  clock.Advance(999ms);
  EXPECT_TRUE(checked.Fresh("/data/a.txt"));
  clock.Advance(1ms);
  EXPECT_FALSE(checked.Fresh("/data/a.txt"));

  checked.Passed("/data/a.txt");  // checked again: fresh again
  EXPECT_TRUE(checked.Fresh("/data/a.txt"));
}

TEST(CheckedFilesTest, ZeroTimeToLiveKeepsNothing) {
  fakes::FakeClock clock;
  CheckedFiles checked(clock, absl::ZeroDuration());
  checked.Passed("/data/a.txt");
  EXPECT_FALSE(checked.Fresh("/data/a.txt"));
}

TEST(CheckedFilesTest, AtCapacityExpiredPathsGoFirstThenAll) {
  fakes::FakeClock clock;
  CheckedFiles checked(clock, absl::Seconds(1), /*capacity=*/2);
  checked.Passed("/a");
  clock.Advance(600ms);
  checked.Passed("/b");
  clock.Advance(600ms);  // /a has expired, /b has not
  checked.Passed("/c");
  EXPECT_TRUE(checked.Fresh("/b"));
  EXPECT_TRUE(checked.Fresh("/c"));

  checked.Passed("/b");  // already kept: nothing is dropped
  EXPECT_TRUE(checked.Fresh("/c"));

  checked.Passed("/d");  // full and nothing expired: everything else goes
  EXPECT_TRUE(checked.Fresh("/d"));
  EXPECT_FALSE(checked.Fresh("/b"));
  EXPECT_FALSE(checked.Fresh("/c"));
}

}  // namespace
}  // namespace eofaas::proxy
