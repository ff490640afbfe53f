// The deadlines of many pending operations on one periodic timer. A timer armed for every round
// trip and cancelled when the answer comes costs two passes through the reactor's timer queue and
// one more completion handler per request; watching a round trip here costs a list insertion and
// a removal. The price is precision: an operation ends at most one tick after its deadline.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <mutex>

namespace eofaas::proxy {

/// Thread-safe. Owned by std::shared_ptr (its timer's handler keeps it alive); ticks on
/// `executor` only while something is watched.
class DeadlineSweep : public std::enable_shared_from_this<DeadlineSweep> {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  static constexpr std::chrono::milliseconds kTick{5};

  /// Something with a deadline, watched while it waits. Unwatched before it is destroyed.
  class Watched {
   public:
    virtual ~Watched() = default;

   protected:
    /// Its deadline passed while watched: called once per Watch, on one of the sweep's executor's
    /// threads with the sweep's lock held, so it only hands the work on (posts it) and never
    /// calls back into the sweep.
    virtual void OnDeadline() = 0;

   private:
    friend class DeadlineSweep;
    TimePoint deadline_;
    Watched* previous_ = nullptr;
    Watched* next_ = nullptr;
    bool watched_ = false;
    bool expired_ = false;
  };

  explicit DeadlineSweep(boost::asio::any_io_executor executor) : timer_(std::move(executor)) {}

  /// Watches `watched` until `deadline` (or Unwatch). It must not be watched already.
  void Watch(Watched& watched, TimePoint deadline);

  /// Stops watching `watched`; true when its deadline passed first (OnDeadline was called).
  bool Unwatch(Watched& watched);

 private:
  void Unlink(Watched& watched);
  // With mu_ held: the next sweep in one tick.
  void ArmTick();
  void Sweep();

  std::mutex mu_;  // guards the members below and the list fields of the watched
  boost::asio::steady_timer timer_;
  Watched* head_ = nullptr;
  bool ticking_ = false;
};

}  // namespace eofaas::proxy
