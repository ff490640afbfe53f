// CheckedFiles: passed verdicts kept for their time to live, failures never, memory bounded.
#include "proxy/plan/checked_files.h"

#include <gtest/gtest.h>

#include <chrono>

#include "tests/fakes/fake_clock.h"

namespace eofaas::proxy {
namespace {

using std::chrono_literals::operator""ms;

TEST(CheckedFilesTest, APassedUriIsFreshForItsTimeToLive) {
  fakes::FakeClock clock;
  CheckedFiles checked(clock, absl::Seconds(1));
  EXPECT_FALSE(checked.Fresh("file:///data/a.txt"));
  checked.Passed("file:///data/a.txt");
  EXPECT_TRUE(checked.Fresh("file:///data/a.txt"));
  EXPECT_FALSE(checked.Fresh("file:///data/b.txt"));
  clock.Advance(999ms);
  EXPECT_TRUE(checked.Fresh("file:///data/a.txt"));
  clock.Advance(1ms);
  EXPECT_FALSE(checked.Fresh("file:///data/a.txt"));

  checked.Passed("file:///data/a.txt");  // checked again: fresh again
  EXPECT_TRUE(checked.Fresh("file:///data/a.txt"));
}

TEST(CheckedFilesTest, ZeroTimeToLiveKeepsNothing) {
  fakes::FakeClock clock;
  CheckedFiles checked(clock, absl::ZeroDuration());
  checked.Passed("file:///data/a.txt");
  EXPECT_FALSE(checked.Fresh("file:///data/a.txt"));
}

TEST(CheckedFilesTest, AtCapacityExpiredUrisGoFirstThenAll) {
  fakes::FakeClock clock;
  CheckedFiles checked(clock, absl::Seconds(1), /*capacity=*/2);
  checked.Passed("file:///a");
  clock.Advance(600ms);
  checked.Passed("file:///b");
  clock.Advance(600ms);  // /a has expired, /b has not
  checked.Passed("file:///c");
  EXPECT_TRUE(checked.Fresh("file:///b"));
  EXPECT_TRUE(checked.Fresh("file:///c"));

  checked.Passed("file:///b");  // already kept: nothing is dropped
  EXPECT_TRUE(checked.Fresh("file:///c"));

  checked.Passed("file:///d");  // full and nothing expired: everything else goes
  EXPECT_TRUE(checked.Fresh("file:///d"));
  EXPECT_FALSE(checked.Fresh("file:///b"));
  EXPECT_FALSE(checked.Fresh("file:///c"));
}

}  // namespace
}  // namespace eofaas::proxy
