#include "proxy/dispatch/deadline_sweep.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

namespace eofaas::proxy {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

class Recorder final : public DeadlineSweep::Watched {
 public:
  int deadlines = 0;
  SteadyClock::time_point at;

 private:
  void OnDeadline() override {
    ++deadlines;
    at = SteadyClock::now();
  }
};

TEST(DeadlineSweepTest, ReportsAPassedDeadlineWithinATick) {
  boost::asio::io_context io;
  auto sweep = std::make_shared<DeadlineSweep>(io.get_executor());
  Recorder recorder;
  const auto deadline = SteadyClock::now() + 30ms;
  sweep->Watch(recorder, deadline);
  io.run();  // returns once nothing is watched any more
  EXPECT_EQ(recorder.deadlines, 1);
  EXPECT_GE(recorder.at, deadline);
  EXPECT_TRUE(sweep->Unwatch(recorder));
}

TEST(DeadlineSweepTest, UnwatchedInTimeNeverExpires) {
  boost::asio::io_context io;
  auto sweep = std::make_shared<DeadlineSweep>(io.get_executor());
  Recorder early, late;
  sweep->Watch(early, SteadyClock::now() + 20ms);
  sweep->Watch(late, SteadyClock::now() + 10s);
  EXPECT_FALSE(sweep->Unwatch(late));
  io.run();
  EXPECT_EQ(early.deadlines, 1);
  EXPECT_EQ(late.deadlines, 0);
  // Watched again, a new deadline counts afresh.
  sweep->Watch(early, SteadyClock::now() + 10s);
  EXPECT_FALSE(sweep->Unwatch(early));
}

}  // namespace
}  // namespace eofaas::proxy
