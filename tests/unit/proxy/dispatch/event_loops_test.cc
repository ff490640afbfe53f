#include "proxy/dispatch/event_loops.h"

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
#include <future>
#include <set>
#include <thread>

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

}  // namespace
}  // namespace eofaas::proxy
