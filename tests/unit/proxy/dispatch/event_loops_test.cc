#include "proxy/dispatch/event_loops.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace eofaas::proxy {
namespace {

// Runs `task` on loop `index` and returns what it returned.
template <typename Task>
auto RunOn(EventLoops& loops, size_t index, Task task) {
  std::promise<decltype(task())> result;
  boost::asio::post(loops.at(index), [&] { result.set_value(task()); });
  return result.get_future().get();
}

TEST(EventLoopsTest, EachLoopRunsOnItsOwnThread) {
  EventLoops loops(3);
  ASSERT_EQ(loops.size(), 3u);
  std::set<std::thread::id> threads;
  for (size_t i = 0; i < loops.size(); ++i) {
    threads.insert(RunOn(loops, i, [] { return std::this_thread::get_id(); }));
  }
  EXPECT_EQ(threads.size(), 3u);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
}

TEST(EventLoopsTest, CurrentIsTheCallersLoopOnALoopAndTheLoopsInTurnElsewhere) {
  EventLoops loops(2);
  for (size_t i = 0; i < loops.size(); ++i) {
    EXPECT_EQ(RunOn(loops, i, [&] { return loops.Current(); }), i);
    EXPECT_EQ(RunOn(loops, i, [&] { return loops.Current(); }), i);
  }
  const size_t first = loops.Current();
  EXPECT_EQ(loops.Current(), (first + 1) % 2);
  EXPECT_EQ(loops.Current(), first);
}

TEST(EventLoopsTest, NoCountBelowOne) {
  EventLoops loops(0);
  EXPECT_EQ(loops.size(), 1u);
  EXPECT_EQ(RunOn(loops, 0, [&] { return loops.Current(); }), 0u);
}

TEST(EventLoopsTest, StepsDeferredOnALoopRunBackToBackOnceNothingElseIsReady) {
  EventLoops loops(1);
  const LoopExecutor loop = loops.at(0);
  std::vector<std::string> order;  // only touched on the loop
  std::promise<void> finished;
  boost::asio::post(loop, [&] {
    boost::asio::post(loop, [&] { order.push_back("due"); });
    PostInBurst(loop, [&] {
      order.push_back("step 1");
      // Deferred while the burst runs: it joins the burst.
      PostInBurst(loop, [&] {
        order.push_back("step 3");
        boost::asio::post(loop, [&] { finished.set_value(); });
      });
      boost::asio::post(loop, [&] { order.push_back("posted by step 1"); });
    });
    boost::asio::post(loop, [&] { order.push_back("posted between"); });
    PostInBurst(loop, [&] { order.push_back("step 2"); });
    order.push_back("deferring returned");  // nothing runs inside PostInBurst
  });
  finished.get_future().get();
  EXPECT_EQ(order, (std::vector<std::string>{"deferring returned", "due", "posted between",
                                             "step 1", "step 2", "step 3", "posted by step 1"}));
}

TEST(EventLoopsTest, ALoopThatNeverRunsOutOfWorkStillRunsItsDeferredSteps) {
  EventLoops loops(1);
  const LoopExecutor loop = loops.at(0);
  std::atomic<bool> ran{false};
  std::promise<bool> result;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  // Keeps a handler ready at all times, until the step ran.
  std::function<void()> busy = [&] {
    if (ran || std::chrono::steady_clock::now() > give_up) return result.set_value(ran);
    boost::asio::post(loop, busy);
  };
  boost::asio::post(loop, [&] {
    PostInBurst(loop, [&] { ran = true; });
    busy();
  });
  EXPECT_TRUE(result.get_future().get()) << "the step never ran";
}

TEST(EventLoopsTest, AStepDeferredFromAnotherThreadRunsOnTheLoop) {
  EventLoops loops(2);
  std::promise<size_t> ran_on;
  PostInBurst(loops.at(1), [&] { ran_on.set_value(loops.Current()); });
  EXPECT_EQ(ran_on.get_future().get(), 1u);
  // From loop 0's thread, a step for loop 1 is a post to loop 1, not part of loop 0's burst.
  std::promise<size_t> crossed;
  boost::asio::post(loops.at(0),
                    [&] { PostInBurst(loops.at(1), [&] { crossed.set_value(loops.Current()); }); });
  EXPECT_EQ(crossed.get_future().get(), 1u);
}

}  // namespace
}  // namespace eofaas::proxy
